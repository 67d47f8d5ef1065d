"""The nightly job's classic work in PySpark (local mode), for BENCHMARKS.md.

Reads the same lake day as `batch-analytics daily` (LAKE/samples/date=D/hour=HH/*.parquet)
and computes, per GPU:
  - daily statistics: count, min, mean, max, stddev, p50/p95/p99 of the nine main metrics
    (percentile_approx: Spark's usual idiom, cheaper than the exact percentiles
    batch-analytics computes);
  - hourly patterns by local hour of day (from_utc_timestamp, DST-aware);
  - temperature spikes: rise of more than X degC within Y s inside a session, not across gaps
    (intervals > max(3 x the session's median interval, 2 s) or > 120 s), consecutive
    crossings merged into one episode with start, peak, duration;
  - Pearson correlations of the 36 metric pairs, all / idle / busy samples;
and writes each result as Parquet. It does not compute energy, time shares, throttle
shares, the comparison table or the report (batch-analytics does all of them in the
timed run).

  spark-submit nightly_spark.py LAKE DATE OUT [TIMEZONE]
"""
import sys
import time

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

lake, date, out = sys.argv[1], sys.argv[2], sys.argv[3]
tz = sys.argv[4] if len(sys.argv) > 4 else "UTC"
SPIKE_RISE, SPIKE_WINDOW_S = 10.0, 30
IDLE, BUSY = 10.0, 70.0

spark = (
    SparkSession.builder.appName("gpustream-nightly")
    .config("spark.sql.shuffle.partitions", "8")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
t0 = time.time()

METRICS = ["gpu_temp_c", "hot_spot_c", "memory_temp_c", "cpu_temp_c", "gpu_load_pct",
           "power_w", "memory_used_mb", "core_clock_mhz", "memory_clock_mhz"]


def usable(c):
    return F.when(F.coalesce(F.array_contains("unsupported", c), F.lit(False)), None).otherwise(F.col(c))


raw = (spark.read.option("basePath", f"{lake}/samples")
       .parquet(f"{lake}/samples/date={date}"))
s = raw.select(
    "host", "gpu", "session", "event_time",
    *[usable(m).cast("double").alias(m) for m in METRICS if m != "power_w"],
    F.coalesce(usable("board_power_w"), usable("chip_power_w")).cast("double").alias("power_w"),
).cache()

# Daily statistics.
aggs = []
for m in METRICS:
    aggs += [F.count(m).alias(f"{m}_count"), F.min(m).alias(f"{m}_min"), F.avg(m).alias(f"{m}_mean"),
             F.max(m).alias(f"{m}_max"), F.stddev(m).alias(f"{m}_stddev"),
             F.percentile_approx(m, [0.5, 0.95, 0.99]).alias(f"{m}_pct")]
daily = s.groupBy("host", "gpu").agg(F.count(F.lit(1)).alias("samples"), *aggs)
daily.write.mode("overwrite").parquet(f"{out}/daily_gpu")

# Hourly patterns in the local timezone.
hourly = (s.withColumn("hour", F.hour(F.from_utc_timestamp("event_time", tz)))
          .groupBy("host", "gpu", "hour")
          .agg(F.count(F.lit(1)).alias("samples"), F.avg("gpu_load_pct").alias("gpu_load_pct_mean"),
               F.avg("gpu_temp_c").alias("gpu_temp_c_mean"), F.max("gpu_temp_c").alias("gpu_temp_c_max"),
               F.avg("power_w").alias("power_w_mean")))
hourly.write.mode("overwrite").parquet(f"{out}/hourly")

# Spikes: gaps split a session into segments; within a segment, the minimum of the
# preceding Y seconds; crossings grouped into episodes.
sess = Window.partitionBy("host", "gpu", "session").orderBy("event_time")
t = s.select("host", "gpu", "session", "event_time", "gpu_temp_c",
             F.unix_micros("event_time").alias("ts"))
t = t.withColumn("dt", (F.col("ts") - F.lag("ts").over(sess)) / 1e6)
med = t.groupBy("host", "gpu", "session").agg(F.percentile_approx("dt", 0.5).alias("median_dt"))
t = t.join(med, ["host", "gpu", "session"])
t = t.withColumn("gap", ((F.col("dt") > F.greatest(F.col("median_dt") * 3, F.lit(2.0))) | (F.col("dt") > 120)).cast("int"))
t = t.withColumn("segment", F.sum(F.coalesce("gap", F.lit(0))).over(sess.rowsBetween(Window.unboundedPreceding, 0)))
seg = Window.partitionBy("host", "gpu", "session", "segment").orderBy("ts")
t = t.filter(F.col("gpu_temp_c").isNotNull())
t = t.withColumn("base", F.min("gpu_temp_c").over(seg.rangeBetween(-SPIKE_WINDOW_S * 1_000_000, -1)))
t = t.withColumn("cross", (F.col("gpu_temp_c") - F.col("base") > SPIKE_RISE).cast("int"))
t = t.withColumn("episode", F.sum(1 - F.col("cross")).over(seg.rowsBetween(Window.unboundedPreceding, 0)))
spikes = (t.filter(F.col("cross") == 1)
          .groupBy("host", "gpu", "session", "segment", "episode")
          .agg(F.min("event_time").alias("first_crossing"), F.min("base").alias("start_c"),
               F.max("gpu_temp_c").alias("peak_c"), F.max("event_time").alias("end_time"),
               F.count(F.lit(1)).alias("samples")))
spikes.write.mode("overwrite").parquet(f"{out}/spikes")

# Correlations: every unordered pair once, all / idle / busy.
pairs = [(a, b) for i, a in enumerate(METRICS) for b in METRICS[i + 1:]]
corr_aggs = [F.corr(a, b).alias(f"{a}__{b}") for a, b in pairs]
for state, cond in [("all", F.lit(True)), ("idle", F.col("gpu_load_pct") < IDLE),
                    ("busy", F.col("gpu_load_pct") >= BUSY)]:
    s.filter(cond).groupBy("host", "gpu").agg(*corr_aggs) \
        .write.mode("overwrite").parquet(f"{out}/correlations_{state}")

print(f"spark nightly: {time.time() - t0:.1f}s for {raw.count()} rows", file=sys.stderr)
spark.stop()
