#!/usr/bin/env bash
# Runs a small mori workload under `R -d valgrind` and counts memory errors
# whose stack has a frame in mori's code (mori.so, Rust crates mori /
# mori_core). Prints the figures; the full log stays in $LOG.
#
#   bash tools/reliability/valgrind.sh [lib]
set -euo pipefail
LIB=${1:-}
if ! command -v valgrind > /dev/null; then
  apt-get install -y valgrind > /dev/null 2>&1 || { apt-get update > /dev/null && apt-get install -y valgrind > /dev/null; }
fi
WORK=$(mktemp -d /tmp/mori-valgrind.XXXXXX)
LOG=${LOG:-$WORK/valgrind.log}
cat > "$WORK/workload.R" <<'RS'
args <- commandArgs(TRUE)
if (length(args) && nzchar(args[1])) .libPaths(c(args[1], .libPaths()))
library(mori)
set.seed(1)
x <- share(rnorm(1e4)); stopifnot(sum(x) == sum(x[]))
s <- share(c("a", NA, "\u00e9", strrep("q", 100))); stopifnot(identical(s[3], "\u00e9"), is.na(s[2]))
l <- share(list(a = 1:100, b = letters, c = list(d = 2.5, f = function(z) z)))
stopifnot(identical(l$b, letters), l$c$d == 2.5)
d <- share(head(iris, 20)); stopifnot(identical(d, head(iris, 20)))
m <- share(matrix(as.double(1:20), 4)); stopifnot(m[4, 5] == 20)
stopifnot(identical(unserialize(serialize(l, NULL)), unserialize(serialize(l, NULL))))
y <- map_shared(shared_name(x)); stopifnot(identical(y, x))
sl <- x[1:5000]; stopifnot(identical(sl, x[][1:5000]))
z <- x; z[1] <- 0; stopifnot(x[1] != 0)
t <- s; t[1] <- "b"; stopifnot(s[1] == "a")
nm <- sprintf("vg%x", Sys.getpid()); p <- share(d, name = nm); q <- map_shared(nm); unshare(nm)
stopifnot(identical(q, d))
stopifnot(is.null(map_shared("not a name")))
e <- tryCatch(map_shared("/mori_1_1_1"), error = function(e) conditionMessage(e)); stopifnot(grepl("not found", e))
r <- shared_regions()
rm(x, s, l, d, m, y, sl, z, t, p, q); invisible(gc())
cat("WORKLOAD DONE\n")
RS
echo "valgrind $(valgrind --version | sed 's/valgrind-//'); log: $LOG"
start=$(date +%s)
R -d "valgrind --error-limit=no --num-callers=40 --leak-check=full --log-file=$LOG" --vanilla --slave -f "$WORK/workload.R" --args "$LIB" > "$WORK/out.txt" 2>&1 || true
end=$(date +%s)
grep -q "WORKLOAD DONE" "$WORK/out.txt" && echo "workload completed under valgrind in $((end - start)) s" || { echo "workload did not complete:"; tail -20 "$WORK/out.txt"; }
# Split the log into error records (blank-line separated) and count.
cat > "$WORK/count.py" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
lines = [re.sub(r"^==\d+== ?", "", l) for l in text.splitlines()]
records, cur = [], []
for l in lines:
    if l.strip() == "":
        if cur: records.append(cur); cur = []
    else:
        cur.append(l)
if cur: records.append(cur)
kinds = ["Invalid read", "Invalid write", "Invalid free", "Mismatched free", "Conditional jump",
         "Use of uninitialised", "Syscall param", "Source and destination overlap", "definitely lost", "indirectly lost"]
is_mori = lambda r: any(re.search(r"mori(\.so|_core|::)|/mori/", l) for l in r[1:])
print(f"{'kind':34s} {'all':>5s} {'in mori frames':>15s}")
for k in kinds:
    rs = [r for r in records if r and k in r[0]]
    print(f"{k:34s} {len(rs):5d} {sum(is_mori(r) for r in rs):15d}")
summ = [l for l in lines if "ERROR SUMMARY" in l]
print(summ[-1] if summ else "no ERROR SUMMARY line")
print("\n".join(l for l in lines if re.search(r"(definitely|indirectly|possibly) lost:", l)))
for r in records:
    if r and any(k in r[0] for k in kinds[:7]) and is_mori(r):
        print("\n--- first mori record ---\n" + "\n".join(r[:20])); break
PY
python3 "$WORK/count.py" "$LOG"

