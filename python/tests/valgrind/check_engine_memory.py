"""Memory check of the extension and the engine inside a real Python
process: engine_workload.py under valgrind memcheck. CPython has its own
"definitely lost" blocks at exit and its own uninitialised reads, so the
check fails only on a record (leak or error) with a frame in the
extension (_engine.c) or in libdirstorage (src/*.c). Exit 0: clean.

usage: check_engine_memory.py VALGRIND PYTHON SOURCE_DIR SCRATCH
"""
import glob
import os
import re
import subprocess
import sys


def main():
    valgrind, python, src, scratch = sys.argv[1:5]
    os.makedirs(scratch, exist_ok=True)
    ours = {"_engine.c"} | {os.path.basename(p) for p in
                            glob.glob(os.path.join(src, "src", "*.c"))}
    frame = re.compile(r"\((\w+\.c):\d+\)")
    out = os.path.join(scratch, "valgrind.log")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    subprocess.run([valgrind, "--leak-check=full",
                    "--show-leak-kinds=definite,indirect",
                    "--log-file=" + out, python,
                    os.path.join(os.path.dirname(__file__),
                                 "engine_workload.py"),
                    os.path.join(scratch, "ds")], env=env, check=True)
    text = open(out).read()
    # records are separated by lines holding only "==PID== "
    records = re.split(r"\n==\d+== \n", text)
    bad = [r for r in records
           if any(m in ours for m in frame.findall(r))
           and ("lost in loss record" in r or "Invalid" in r
                or "uninitialised" in r or "Mismatched" in r)]
    summary = re.findall(r"definitely lost: .*", text)
    print("valgrind: %d records, %d in the extension or the engine; %s"
          % (len(records), len(bad), summary[0] if summary else ""))
    for r in bad:
        print(r)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
