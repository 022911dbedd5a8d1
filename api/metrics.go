package api

import (
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are one Server's Prometheus collectors, on a registry of its own
// (never the global one, so several servers can live in one process).
type metrics struct {
	reg        *prometheus.Registry
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	commands   *prometheus.CounterVec
	batchSize  prometheus.Histogram
	batchLat   prometheus.Histogram
	wsClients  prometheus.Gauge
	wsDropped  prometheus.Counter
	wsMessages prometheus.Counter
	feedLost   prometheus.Counter
	// Full-state snapshots (prices, books) rendered for a subscriber, and
	// those served from the last rendering instead.
	wsSnapshotsRendered prometheus.Counter
	wsSnapshotsReused   prometheus.Counter
	wsRejected          *prometheus.CounterVec

	// Curried per-request series: a route, method and status take a
	// prometheus label lookup (hashing, a lock) once, not per request.
	// Routes and methods are the app's own (fiber answers others before
	// routing) and statuses are the server's, so this stays small.
	reqSeries sync.Map // reqLabels -> reqObservers
}

type reqLabels struct {
	route, method string
	status        int
}

type reqObservers struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

func (m *metrics) request(route, method string, status int) reqObservers {
	k := reqLabels{route, method, status}
	if o, ok := m.reqSeries.Load(k); ok {
		return o.(reqObservers)
	}
	o := reqObservers{
		count:   m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
		latency: m.latency.WithLabelValues(route, method),
	}
	m.reqSeries.Store(k, o)
	return o
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpux_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gpux_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpux_engine_commands_total", Help: "Commands the API submitted, by kind and result (ok, an engine code, or an error).",
		}, []string{"kind", "result"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gpux_journal_batch_commands", Help: "Commands per journaled batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		batchLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gpux_journal_append_seconds", Help: "Journal append latency per batch.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2},
		}),
		wsClients: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gpux_ws_clients", Help: "Connected websocket clients.",
		}),
		wsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpux_ws_dropped_clients_total", Help: "Websocket clients dropped because their send queue was full.",
		}),
		wsMessages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpux_ws_messages_total", Help: "Feed messages queued to websocket clients.",
		}),
		feedLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpux_feed_overflows_total", Help: "Times the feed hub fell behind the engine and reset every subscriber.",
		}),
		wsSnapshotsRendered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpux_ws_snapshots_rendered_total", Help: "Full-state snapshots (prices, books) rendered for new subscribers.",
		}),
		wsSnapshotsReused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gpux_ws_snapshots_reused_total", Help: "Full-state snapshots served from the channel's last rendering.",
		}),
		wsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gpux_ws_rejected_ops_total", Help: "Websocket ops refused, by error code (rate_limited, too_many_channels, ...).",
		}, []string{"code"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.commands, m.batchSize, m.batchLat, m.wsClients, m.wsDropped, m.wsMessages, m.feedLost,
		m.wsSnapshotsRendered, m.wsSnapshotsReused, m.wsRejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
}

// observe is the outermost middleware: it renders errors itself so it can
// count the status they end in.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
	}
	route := "unmatched"
	if r := c.Route(); r != nil && r.Path != "/" {
		route = r.Path
	}
	o := s.metrics.request(route, c.Method(), c.Response().StatusCode())
	o.count.Inc()
	o.latency.Observe(time.Since(start).Seconds())
	return nil
}
