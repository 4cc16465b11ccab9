package metrics

import (
	"context"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// Auditor wraps the access log and counts its records and failures: a
// failed audit write fails the read (fail closed), so failures are what an
// operator must hear about first.
type Auditor struct {
	domain.Auditor
	records  *prometheus.CounterVec
	failures *prometheus.CounterVec
}

var _ domain.Auditor = (*Auditor)(nil)

// InstrumentAuditor wraps a, registering buurtsignaal_audit_records_total
// and buurtsignaal_audit_failures_total (by kind: access or denied) on reg.
func InstrumentAuditor(a domain.Auditor, reg prometheus.Registerer) *Auditor {
	m := &Auditor{
		Auditor: a,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buurtsignaal_audit_records_total", Help: "Access records written durably, by kind (access, denied).",
		}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "buurtsignaal_audit_failures_total", Help: "Access records that could not be written (the read they audit failed), by kind.",
		}, []string{"kind"}),
	}
	for _, k := range []string{"access", "denied"} { // export zeros from the start
		m.records.WithLabelValues(k)
		m.failures.WithLabelValues(k)
	}
	reg.MustRegister(m.records, m.failures)
	return m
}

func (m *Auditor) count(kind string, err error) error {
	if err != nil {
		m.failures.WithLabelValues(kind).Inc()
	} else {
		m.records.WithLabelValues(kind).Inc()
	}
	return err
}

// RecordAccess implements domain.Auditor.
func (m *Auditor) RecordAccess(ctx context.Context, a domain.Access) error {
	return m.count("access", m.Auditor.RecordAccess(ctx, a))
}

// RecordDenied implements domain.Auditor.
func (m *Auditor) RecordDenied(ctx context.Context, a domain.Access) error {
	return m.count("denied", m.Auditor.RecordDenied(ctx, a))
}

// Storage exports, at scrape time, the bytes on disk of each data directory
// (buurtsignaal_data_bytes{dir}), the free bytes of the file system holding
// them (buurtsignaal_data_free_bytes) and the number of live subject keys
// (buurtsignaal_subject_keys).
type Storage struct {
	Dirs map[string]string // label -> directory, e.g. "events", "keys"
	Root string            // a directory on the file system to report free space of
	Keys func() (int, error)
}

var (
	dataBytesDesc = prometheus.NewDesc("buurtsignaal_data_bytes", "Bytes on disk of a data directory (events, keys).", []string{"dir"}, nil)
	freeDesc      = prometheus.NewDesc("buurtsignaal_data_free_bytes", "Free bytes, for unprivileged users, of the file system holding the data directory.", nil, nil)
	keysDesc      = prometheus.NewDesc("buurtsignaal_subject_keys", "Live subject keys in the key store (erased subjects' keys are gone).", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Storage) Describe(ch chan<- *prometheus.Desc) {
	ch <- dataBytesDesc
	ch <- freeDesc
	ch <- keysDesc
}

// Collect implements prometheus.Collector. A value that cannot be read is
// left out of the scrape rather than reported as zero.
func (s *Storage) Collect(ch chan<- prometheus.Metric) {
	for label, dir := range s.Dirs {
		if n, err := dirBytes(dir); err == nil {
			ch <- prometheus.MustNewConstMetric(dataBytesDesc, prometheus.GaugeValue, float64(n), label)
		}
	}
	var st syscall.Statfs_t
	if s.Root != "" && syscall.Statfs(s.Root, &st) == nil {
		ch <- prometheus.MustNewConstMetric(freeDesc, prometheus.GaugeValue, float64(st.Bavail)*float64(st.Bsize))
	}
	if s.Keys != nil {
		if n, err := s.Keys(); err == nil {
			ch <- prometheus.MustNewConstMetric(keysDesc, prometheus.GaugeValue, float64(n))
		}
	}
}

func dirBytes(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return nil // removed while walking (a compaction)
			}
			n += info.Size()
		}
		return nil
	})
	return n, err
}
