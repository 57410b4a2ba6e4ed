#!/usr/bin/env python3
"""Prepares upstream Placement's gabbi files for scripts/gabbi/run.sh.

    gabbits.py WHEEL OUTDIR PREFIX ADMIN_TOKEN USER_TOKEN

Takes placement/tests/functional/gabbits/*.yaml out of the openstack-placement wheel
WHEEL, keeps the files whose only fixture is the plain APIFixture (an empty service; the
other fixtures seed the database in-process, which a live service cannot be given), and
writes them to OUTDIR rewritten for a live service:

- the noauth2 tokens the files send (`x-auth-token: admin`, `admin:admin`, `user`)
  become real ones: ADMIN_TOKEN for the first two, USER_TOKEN (a non-admin) for `user`;
  when ADMIN_TOKEN is `admin` (upstream with noauth2) nothing is changed;
- when the service is under a path prefix (PREFIX, e.g. /placement), the links the
  files expect in response bodies (`...href: /resource_providers/...`) get it too, as
  the service includes its mount point in the links it returns. Request URLs need no
  change: gabbi-run puts the target URL's path in front of every `/`-rooted one, and
  its `$NETLOC` (in the absolute URLs expected in Location headers) already ends with
  the prefix.

Prints one line per kept file: its name and its number of tests; the files left out go
to stderr with their fixtures.
"""

import re
import sys
import zipfile

import yaml

GABBITS = "placement/tests/functional/gabbits/"
TOKEN = re.compile(r"^(\s*x-auth-token:\s*)(admin|admin:admin|user)(\s*)$", re.I)
HREF = re.compile(r"^(\s*\$[^:]*href:\s*)(/\S*)(\s*)$")


def main():
    wheel, outdir, prefix, admin, user = sys.argv[1:6]
    prefix = prefix.rstrip("/")
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if n.startswith(GABBITS) and n.endswith(".yaml"))
        if not names:
            raise SystemExit(f"no {GABBITS}*.yaml in {wheel}")
        for name in names:
            text = z.read(name).decode()
            doc = yaml.safe_load(text)
            fixtures = doc.get("fixtures") or []
            base = name[len(GABBITS):]
            if fixtures != ["APIFixture"]:
                print(f"left out {base}: fixtures {', '.join(fixtures) or 'none'}", file=sys.stderr)
                continue
            out = []
            for line in text.splitlines(keepends=True):
                body = line.rstrip("\n")
                nl = line[len(body):]
                m = TOKEN.match(body)
                if m and admin != "admin":
                    tok = user if m.group(2).lower() == "user" else admin
                    body = m.group(1) + tok + m.group(3)
                m = HREF.match(body)
                if m and prefix:
                    body = m.group(1) + prefix + m.group(2) + m.group(3)
                out.append(body + nl)
            with open(f"{outdir}/{base}", "w") as f:
                f.write("".join(out))
            print(base, len(doc.get("tests") or []))


if __name__ == "__main__":
    main()
