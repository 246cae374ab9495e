#!/usr/bin/python3
"""Print the normalised manifest of a packed storage's A/ tree.

usage: pack_tree.py DIR

One line per entry under DIR/A, sorted by path: "d MODE PATH" for a
directory, "f MODE MD5 PATH" for a file (MODE: octal permission bits).
The unix time in a pack leftover's name ("...-1764912345-deleted") is
written "...-T-deleted", since two packs never run in the same second.
Two packs that left the same A/ print the same text.
"""
import hashlib
import os
import re
import sys

LEFTOVER = re.compile(r"-[0-9]+-deleted$")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    top = os.path.join(sys.argv[1], "A")
    lines = []
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = LEFTOVER.sub("-T-deleted", os.path.relpath(p, top))
            st = os.lstat(p)
            mode = "%o" % (st.st_mode & 0o7777)
            if n in dirs:
                lines.append("d %s %s" % (mode, rel))
            else:
                with open(p, "rb") as f:
                    md5 = hashlib.md5(f.read()).hexdigest()
                lines.append("f %s %s %s" % (mode, md5, rel))
    lines.sort(key=lambda l: l.split(" ")[-1])
    sys.stdout.write("".join(l + "\n" for l in lines))


if __name__ == "__main__":
    main()
