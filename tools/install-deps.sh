#!/usr/bin/env bash
# Installs what building, testing and the demo need, and nothing twice:
# Debian's prebuilt R packages where they are recent enough, CRAN for the rest.
set -euo pipefail

debian_pkgs=(r-cran-testthat r-cran-callr r-cran-processx r-cran-ps r-cran-future r-cran-future.apply
             r-cran-foreach r-cran-doparallel r-cran-data.table r-cran-tibble r-cran-lobstr
             r-cran-roxygen2 r-cran-knitr r-cran-markdown xz-utils strace qpdf)
missing=()
for p in "${debian_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

# Versions Debian does not have: mirai >= 2.0 (daemons, mirai_map, everywhere)
# and purrr >= 1.1 (in_parallel).
Rscript --vanilla - <<'RSCRIPT'
need <- c(mirai = "2.0.0", purrr = "1.1.0", nanonext = "1.0.0", carrier = "0.1.0")
have <- vapply(names(need), function(p) {
  v <- tryCatch(as.character(packageVersion(p)), error = function(e) "0")
  utils::compareVersion(v, need[[p]]) >= 0
}, logical(1))
if (!all(have)) {
  cat("== install.packages:", names(need)[!have], "\n")
  install.packages(names(need)[!have], repos = "https://cloud.r-project.org", Ncpus = 2L, quiet = TRUE)
}
RSCRIPT

if ! command -v cargo > /dev/null && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
  echo "mori needs Rust (cargo and rustc >= 1.80): install them with rustup" >&2
  exit 1
fi
