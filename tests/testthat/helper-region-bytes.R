# Region-byte surgery, in one place, for the tests (and tools/reliability/
# fuzz-lib.R) that corrupt regions on purpose. Every position comes from the
# format the package itself reads, `mori:::layout_fields()` (the core crate's
# named fields, "header.node_count", "node.kind", ...), never a bare number.
# Values are little-endian unsigned integers held as doubles; a u64 is
# read whole (exact below 2^53) and written as c(lo, hi) 32-bit halves or
# one number below 2^53. Base R only, so region_bytes_code() can hand these
# functions to a child process's script.

# The field table: a data frame of name, offset, size.
region_fields <- function() {
  f <- mori:::layout_fields()
  data.frame(name = f$name, offset = f$offset, size = f$size, stringsAsFactors = FALSE)
}

# One field by name: list(offset, size).
region_field <- function(name, fields = region_fields()) {
  k <- match(name, fields$name)
  if (is.na(k)) stop("no region field named ", name)
  list(offset = fields$offset[k], size = fields$size[k])
}

# Bytes of the header and of one node record: the end of their last field.
region_header_size <- function(fields = region_fields()) {
  h <- startsWith(fields$name, "header.")
  max(fields$offset[h] + fields$size[h])
}
region_node_size <- function(fields = region_fields()) {
  n <- startsWith(fields$name, "node.")
  max(fields$offset[n] + fields$size[n])
}

# Absolute offset of field `name` (of node `node`, 0-based, for "node.*").
region_at <- function(name, node = NULL, fields = region_fields()) {
  f <- region_field(name, fields)
  if (startsWith(name, "node.")) {
    if (is.null(node)) stop(name, " needs a node index")
    region_header_size(fields) + node * region_node_size(fields) + f$offset
  } else {
    f$offset
  }
}

# Unsigned little-endian integer of `size` bytes at 0-based `off` (0 past the end).
region_get_uint <- function(b, off, size) {
  if (off + size > length(b)) return(0)
  sum(as.numeric(b[off + seq_len(size)]) * 256^(seq_len(size) - 1))
}
region_put_uint <- function(b, off, size, v) {
  if (off + size > length(b) || anyNA(v)) return(b)
  if (length(v) == 1) v <- c(v %% 4294967296, floor(v / 4294967296))
  halves <- rep_len(c(v, 0), 2)
  bytes <- c(floor((halves[1] %% 4294967296) / 256^(0:3)) %% 256, floor((halves[2] %% 4294967296) / 256^(0:3)) %% 256)
  b[off + seq_len(size)] <- as.raw(bytes[seq_len(size)])
  b
}

# A field's value, and `b` with the field set to `v`.
region_get <- function(b, name, node = NULL, fields = region_fields()) {
  region_get_uint(b, region_at(name, node, fields), region_field(name, fields)$size)
}
region_set <- function(b, name, v, node = NULL, fields = region_fields()) {
  region_put_uint(b, region_at(name, node, fields), region_field(name, fields)$size, v)
}

# FNV-1a 64 of bytes, as c(lo, hi) 32-bit halves (the region checksum's hash).
region_fnv <- function(b) {
  lo <- 0x84222325
  hi <- 0xcbf29ce4
  for (v in as.integer(b)) {
    l8 <- lo %% 256
    lo <- lo - l8 + bitwXor(as.integer(l8), v)
    t <- lo * 435
    nlo <- t %% 4294967296
    hi <- (hi * 435 + (t - nlo) / 4294967296 + (lo %% 16777216) * 256) %% 4294967296
    lo <- nlo
  }
  c(lo, hi)
}

# `b` with its header checksum made right again after an edit: the hash of
# the header before the checksum field and of the node table. Unchanged when
# the node count does not fit the bytes.
region_reseal <- function(b, fields = region_fields(), max_nodes = 1e5) {
  hs <- region_header_size(fields)
  if (length(b) < hs) return(b)
  nodes <- region_get(b, "header.node_count", fields = fields)
  end <- hs + region_node_size(fields) * nodes
  if (end > length(b) || nodes > max_nodes) return(b)
  sum_at <- region_field("header.checksum", fields)
  h <- region_fnv(c(b[seq_len(sum_at$offset)], b[seq_len(end - hs) + hs]))
  region_put_uint(b, sum_at$offset, sum_at$size, h)
}

# `b` with `name` written into the header's name field (NUL padded).
region_set_name <- function(b, name, fields = region_fields()) {
  f <- region_field("header.name", fields)
  if (length(b) < f$offset + f$size) return(b)
  field <- raw(f$size)
  field[seq_len(nchar(name))] <- charToRaw(name)
  b[f$offset + seq_len(f$size)] <- field
  b
}

# The bytes of a published region's file, and writing them back.
region_read <- function(path) readBin(path, "raw", file.size(path))
region_write <- function(b, path) {
  mode <- if (file.exists(path)) file.info(path)$mode
  if (!is.null(mode)) Sys.chmod(path, "600")
  writeBin(b, path)
  # Back to its mode (0400 once sealed): a POSIX shm reader refuses an object
  # that is writable again before it reads a byte.
  if (!is.null(mode)) Sys.chmod(path, mode)
}

# Source lines defining these helpers, for a child process's script.
region_bytes_code <- function() {
  fns <- c("region_fields", "region_field", "region_header_size", "region_node_size", "region_at",
           "region_get_uint", "region_put_uint", "region_get", "region_set", "region_fnv",
           "region_reseal", "region_set_name", "region_read", "region_write")
  unlist(lapply(fns, function(f) c(paste(f, "<-"), deparse(get(f, mode = "function")))))
}
