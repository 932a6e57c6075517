#!/usr/bin/env python3
"""Runs the scim2-tester compliance checks against a SCIM 2.0 base URL.

Usage: scim_compliance.py BASE_URL TOKEN [--all]

Prints each check that did not pass (every check with --all), then a summary line
`compliance: P passed, F failed, S skipped, D deviations`. Exits 1 when a check failed
(an ERROR or CRITICAL status: a MUST of RFC 7643/7644 broken) or the tester crashed.
"""
import sys
from collections import Counter

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

PASSED = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}
FAILED = {Status.ERROR, Status.CRITICAL}


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    url, token = args
    show_all = "--all" in sys.argv
    http = Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    try:
        results = check_server(SyncSCIMClient(http))
    except Exception as error:  # the tester itself failed: count it as a failure
        print(f"compliance: tester crashed: {type(error).__name__}: {error}")
        return 1
    tally = Counter(r.status for r in results)
    for r in results:
        if show_all or r.status not in PASSED:
            kind = getattr(r, "resource_type", None)
            where = f"[{kind}] " if kind else ""
            print(f"  {r.status.name:<10} {where}{r.title}: {(r.reason or '').strip()[:3000]}")
    passed = sum(tally[s] for s in PASSED)
    failed = sum(tally[s] for s in FAILED)
    print(
        f"compliance: {passed} passed, {failed} failed, {tally[Status.SKIPPED]} skipped, "
        f"{tally[Status.DEVIATION]} deviations"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
