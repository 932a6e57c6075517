//! The placeholder-numbering query builder every store module writes SQL with, and the value
//! conversions between rows and domain values (times as microseconds, ids, booleans, cursors).

use crate::domain::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, AssertSqlSafe, Row};
use time::OffsetDateTime;

/// One bound value.
#[derive(Debug, Clone)]
enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
}

/// A query under construction whose placeholders are numbered `$1, $2, ...`, the form that both
/// SQLite and PostgreSQL accept. Values are always bound, never spliced into the text.
#[derive(Debug, Clone)]
pub(super) struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    /// Starts with fixed SQL text.
    pub(super) fn new(text: &'static str) -> Self {
        Self {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }

    /// Appends fixed SQL text.
    pub(super) fn push(mut self, text: &'static str) -> Self {
        self.text.push_str(text);
        self
    }

    fn placeholder(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Binds text.
    pub(super) fn bind_text(self, value: impl Into<String>) -> Self {
        self.placeholder(Arg::Text(Some(value.into())))
    }

    /// Binds optional text (NULL when absent).
    pub(super) fn bind_opt_text(self, value: Option<impl Into<String>>) -> Self {
        self.placeholder(Arg::Text(value.map(Into::into)))
    }

    /// Binds an integer.
    pub(super) fn bind_int(self, value: i64) -> Self {
        self.placeholder(Arg::Int(Some(value)))
    }

    /// Binds an optional integer.
    pub(super) fn bind_opt_int(self, value: Option<i64>) -> Self {
        self.placeholder(Arg::Int(value))
    }

    /// Binds an optional floating-point number.
    pub(super) fn bind_opt_float(self, value: Option<f64>) -> Self {
        self.placeholder(Arg::Float(value))
    }

    /// Binds a boolean as 0 or 1.
    pub(super) fn bind_bool(self, value: bool) -> Self {
        self.placeholder(Arg::Int(Some(i64::from(value))))
    }

    /// Appends `(v1, v2, ...)` with one placeholder per value, for `IN` lists. The list is padded
    /// (its last value repeated, which changes no `IN`) to a length from a few fixed sizes, so
    /// that a statement with lists of many lengths is prepared a few times, not once per length:
    /// the databases' prepared statements are cached per text.
    pub(super) fn bind_text_list(mut self, values: impl IntoIterator<Item = String>) -> Self {
        let values: Vec<String> = values.into_iter().collect();
        self.text.push('(');
        let Some(last) = values.last().cloned() else {
            self.text.push_str("NULL)");
            return self;
        };
        let padded = list_length(values.len());
        let padding = std::iter::repeat_n(last, padded - values.len());
        for (i, value) in values.into_iter().chain(padding).enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self = self.bind_text(value);
        }
        self.text.push(')');
        self
    }

    fn query(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.text.clone()));
        for arg in &self.args {
            query = match arg {
                Arg::Text(v) => query.bind(v.clone()),
                Arg::Int(v) => query.bind(*v),
                Arg::Float(v) => query.bind(*v),
            };
        }
        query
    }

    /// Runs a statement; returns the number of rows it affected.
    pub(super) async fn execute<'c, E>(&self, executor: E) -> Result<u64>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        Ok(self.query().execute(executor).await?.rows_affected())
    }

    /// Fetches every row.
    pub(super) async fn fetch_all<'c, E>(&self, executor: E) -> Result<Vec<AnyRow>>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        Ok(self.query().fetch_all(executor).await?)
    }

    /// Fetches the first row, if any. The statement is always run to its end: SQLite commits a
    /// statement outside a transaction (e.g. `UPDATE ... RETURNING`) only when it finishes, and a
    /// statement abandoned after its first row would have that commit's failure go unseen.
    pub(super) async fn fetch_optional<'c, E>(&self, executor: E) -> Result<Option<AnyRow>>
    where
        E: sqlx::Executor<'c, Database = Any>,
    {
        Ok(self.query().fetch_all(executor).await?.into_iter().next())
    }
}

/// Microseconds since the epoch, as stored.
/// The length an `IN` list of `n` values is padded to: the next power of two up to 512, then
/// the next multiple of 512.
fn list_length(n: usize) -> usize {
    if n <= 512 {
        n.next_power_of_two()
    } else {
        n.div_ceil(512) * 512
    }
}

pub(super) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The time a stored microsecond count stands for.
pub(super) fn from_micros(value: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(value) * 1000)
        .map_err(|e| Error::Storage(format!("bad timestamp {value} in the store: {e}")))
}

/// Reads a column, naming it in the error.
pub(super) fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column)
        .map_err(|e| Error::Storage(format!("column {column}: {e}")))
}

/// Reads a 0/1 column as a boolean.
pub(super) fn get_bool(row: &AnyRow, column: &str) -> Result<bool> {
    Ok(get::<i64>(row, column)? != 0)
}

/// Reads a UUID text column.
pub(super) fn get_uuid(row: &AnyRow, column: &str) -> Result<uuid::Uuid> {
    let text: String = get(row, column)?;
    uuid::Uuid::parse_str(&text).map_err(|e| Error::Storage(format!("column {column}: {e}")))
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub(super) fn like_pattern(text: &str) -> String {
    let mut out = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Encodes a page cursor (an ordering key) for clients.
pub(super) fn encode_cursor(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Decodes a page cursor; a malformed one is the client's error.
pub(super) fn decode_cursor(cursor: &str) -> Result<String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::BadRequest("the cursor is malformed; pass next_cursor from a previous page".into()))
}
