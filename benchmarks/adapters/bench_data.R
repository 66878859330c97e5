# Shared by lme4_fit.R and glmmtmb_fit.R (sourced): the arguments DIR FORMULA REML [WARM], the
# data hand-off and the warnings of the timed call. DIR holds data.csv (factor columns as
# 1-based level codes) and COLUMN.levels files (one level per line, in R's level order).
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
form <- as.formula(args[2])
reml <- as.logical(args[3])
warm <- length(args) >= 4 && as.logical(args[4])

read_bench_data <- function(dir) {
  csv <- file.path(dir, "data.csv")
  d <- if (requireNamespace("data.table", quietly = TRUE)) {
    as.data.frame(data.table::fread(csv, showProgress = FALSE))
  } else {
    read.csv(csv)
  }
  for (f in list.files(dir, pattern = "\\.levels$")) {
    col <- sub("\\.levels$", "", f)
    lv <- readLines(file.path(dir, f), encoding = "UTF-8")
    d[[col]] <- structure(as.integer(d[[col]]), levels = lv, class = "factor")
  }
  d
}

warns <- character()
keep_warning <- function(w) {
  warns <<- c(warns, conditionMessage(w))
  invokeRestart("muffleWarning")
}

d <- read_bench_data(dir)

esc <- function(s) gsub("[\r\n\t]", " ", gsub("([\"\\\\])", "\\\\\\1", s))
