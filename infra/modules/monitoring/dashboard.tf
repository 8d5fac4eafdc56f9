# Dashboard: per service request rate, latency and errors; webhook delivery
# outcomes; outbox backlog; Cloud SQL and Redis health.

locals {
  per_service_tiles = flatten([
    for label, name in var.services : [
      {
        title = "${name}: requests/s by status class"
        dataSets = [{
          plotType = "STACKED_BAR"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${name}\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_RATE"
                crossSeriesReducer = "REDUCE_SUM"
                groupByFields      = ["metric.labels.response_code_class"]
              }
            }
          }
        }]
        yLabel = "req/s"
      },
      {
        title = "${name}: latency p50 / p95 / p99 (ms)"
        dataSets = [for p in ["50", "95", "99"] : {
          plotType       = "LINE"
          legendTemplate = "p${p}"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.run_metric}/request_latencies\" AND resource.labels.service_name = \"${name}\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_DELTA"
                crossSeriesReducer = "REDUCE_PERCENTILE_${p}"
                groupByFields      = ["resource.labels.service_name"]
              }
            }
          }
        }]
        yLabel = "ms"
      },
      {
        title = "${name}: 5xx ratio"
        dataSets = [{
          plotType = "LINE"
          timeSeriesQuery = {
            timeSeriesFilterRatio = {
              numerator = {
                filter = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${name}\" AND metric.labels.response_code_class = \"5xx\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.labels.service_name"]
                }
              }
              denominator = {
                filter = "${local.run_metric}/request_count\" AND resource.labels.service_name = \"${name}\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_RATE"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.labels.service_name"]
                }
              }
            }
          }
        }]
        yLabel = "ratio"
      },
      {
        title = "${name}: instances and CPU p95"
        dataSets = [
          {
            plotType       = "LINE"
            legendTemplate = "instances"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "${local.run_metric}/container/instance_count\" AND resource.labels.service_name = \"${name}\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_MAX"
                  crossSeriesReducer = "REDUCE_SUM"
                  groupByFields      = ["resource.labels.service_name"]
                }
              }
            }
          },
          {
            plotType       = "LINE"
            legendTemplate = "CPU p95"
            targetAxis     = "Y2"
            timeSeriesQuery = {
              timeSeriesFilter = {
                filter = "${local.run_metric}/container/cpu/utilizations\" AND resource.labels.service_name = \"${name}\""
                aggregation = {
                  alignmentPeriod    = "60s"
                  perSeriesAligner   = "ALIGN_DELTA"
                  crossSeriesReducer = "REDUCE_PERCENTILE_95"
                  groupByFields      = ["resource.labels.service_name"]
                }
              }
            }
          },
        ]
        yLabel = "instances"
      },
    ]
  ])

  shared_tiles = [
    {
      title = "Webhook delivery outcomes (per minute)"
      dataSets = [{
        plotType = "STACKED_BAR"
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.delivery_outcomes.name}\""
            aggregation = {
              alignmentPeriod    = "60s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.labels.outcome"]
            }
          }
        }
      }]
      yLabel = "deliveries"
    },
    {
      title = "Dead webhook deliveries"
      dataSets = [{
        plotType = "STACKED_BAR"
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.deliveries_dead.name}\""
            aggregation = {
              alignmentPeriod    = "300s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
            }
          }
        }
      }]
      yLabel = "deliveries"
    },
    {
      title = "Outbox backlog age p50 / p95 / p99 (s)"
      dataSets = [for r in ["PERCENTILE_50", "PERCENTILE_95", "PERCENTILE_99"] : {
        plotType       = "LINE"
        legendTemplate = lower(replace(r, "PERCENTILE_", "p"))
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.outbox_backlog_age.name}\""
            aggregation = {
              alignmentPeriod    = "60s"
              perSeriesAligner   = "ALIGN_DELTA"
              crossSeriesReducer = "REDUCE_${r}"
            }
          }
        }
      }]
      yLabel = "seconds"
    },
    {
      title = "Cloud SQL CPU and connections"
      dataSets = [
        {
          plotType       = "LINE"
          legendTemplate = "CPU"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/cpu/utilization\""
              aggregation = {
                alignmentPeriod  = "60s"
                perSeriesAligner = "ALIGN_MEAN"
              }
            }
          }
        },
        {
          plotType       = "LINE"
          legendTemplate = "connections"
          targetAxis     = "Y2"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.sql_filter} AND metric.type = \"cloudsql.googleapis.com/database/postgresql/num_backends\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MEAN"
                crossSeriesReducer = "REDUCE_SUM"
              }
            }
          }
        },
      ]
      yLabel = "CPU"
    },
    {
      title = "Redis clients and memory usage"
      dataSets = [
        {
          plotType       = "LINE"
          legendTemplate = "connected clients"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.redis_filter} AND metric.type = \"redis.googleapis.com/clients/connected\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MEAN"
                crossSeriesReducer = "REDUCE_SUM"
              }
            }
          }
        },
        {
          plotType       = "LINE"
          legendTemplate = "memory usage ratio"
          targetAxis     = "Y2"
          timeSeriesQuery = {
            timeSeriesFilter = {
              filter = "${local.redis_filter} AND metric.type = \"redis.googleapis.com/stats/memory/usage_ratio\""
              aggregation = {
                alignmentPeriod    = "60s"
                perSeriesAligner   = "ALIGN_MEAN"
                crossSeriesReducer = "REDUCE_MAX"
              }
            }
          }
        },
      ]
      yLabel = "clients"
    },
    {
      title = "Rate-limit rejections by class"
      dataSets = [{
        plotType       = "STACKED_BAR"
        legendTemplate = "$${metric.labels.class}"
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${google_logging_metric.rate_limited.name}\""
            aggregation = {
              alignmentPeriod    = "60s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
              groupByFields      = ["metric.label.class"]
            }
          }
        }
      }]
    },
    {
      title = "Connection failures seen by the services"
      dataSets = [for m in [google_logging_metric.database_connection_failures.name, google_logging_metric.redis_connection_failures.name] : {
        plotType       = "STACKED_BAR"
        legendTemplate = m
        timeSeriesQuery = {
          timeSeriesFilter = {
            filter = "resource.type = \"cloud_run_revision\" AND ${local.user_metric}/${m}\""
            aggregation = {
              alignmentPeriod    = "60s"
              perSeriesAligner   = "ALIGN_SUM"
              crossSeriesReducer = "REDUCE_SUM"
            }
          }
        }
      }]
      yLabel = "failures"
    },
  ]

  all_tiles = concat(local.per_service_tiles, local.shared_tiles)

  # 12-column mosaic, two tiles per row.
  tiles = [
    for i, t in local.all_tiles : {
      xPos   = (i % 2) * 6
      yPos   = floor(i / 2) * 4
      width  = 6
      height = 4
      widget = {
        title = t.title
        xyChart = {
          dataSets = t.dataSets
          yAxis = {
            label = t.yLabel
            scale = "LINEAR"
          }
        }
      }
    }
  ]
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${local.title}: services, deliveries, data stores"
    mosaicLayout = {
      columns = 12
      tiles   = local.tiles
    }
  })
}
