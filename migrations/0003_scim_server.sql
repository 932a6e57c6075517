-- The hub's own SCIM server: token scopes and the attribute index that SCIM filters and sorting run on.

-- 'api' tokens open the admin API; 'scim' tokens open /scim/v2 and name the source that writes.
ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'api';

-- One row per leaf value of a user's or group's SCIM resource (common and schema attributes;
-- memberships and meta times are read from their own tables and columns). `attr` is the lower-cased
-- attribute name, URN-qualified for extension attributes; `elem` numbers the elements of a
-- multi-valued attribute; `sub` is the lower-cased sub-attribute name, or '' for the attribute itself
-- (a complex value also gets a '' row, marking it present). `txt` is the comparable text (folded to
-- lower case unless the attribute is case-exact), hex-encoded byte by byte as 'xx.' so that ordering
-- and LIKE patterns behave the same on every database and collation; `num` holds numbers and `tim`
-- dateTimes (microseconds since the epoch, exact).
CREATE TABLE scim_index (
    resource_id TEXT NOT NULL,
    attr TEXT NOT NULL,
    elem BIGINT NOT NULL,
    sub TEXT NOT NULL,
    txt TEXT,
    num DOUBLE PRECISION,
    tim BIGINT
);
CREATE INDEX scim_index_txt ON scim_index (attr, sub, txt);
CREATE INDEX scim_index_num ON scim_index (attr, sub, num);
CREATE INDEX scim_index_tim ON scim_index (attr, sub, tim);
CREATE INDEX scim_index_resource ON scim_index (resource_id, attr, sub);
