// Package notify delivers notifications about signals to the teams,
// organisations and people concerned. A notification carries ids, codes and
// links, never personal data.
//
// This file is the webhook channel: each delivery is an HTTPS (or, for
// tests, loopback HTTP) POST of the notification as a CloudEvent
// (cloudevent.go), signed as the Standard Webhooks specification says
// (https://www.standardwebhooks.com), so receivers verify it with an
// off-the-shelf library:
//
//	webhook-id: <the idempotency key>
//	webhook-timestamp: <unix seconds>
//	webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
//
// The key is the target's own (TargetSecret), which receivers configure as
// "whsec_" + its base64 (SigningSecret). The idempotency key is also in
// Idempotency-Key, so a receiver drops the repeats that at-least-once
// delivery allows. For one version the older signature header is sent too,
// deprecated:
//
//	Buurtsignaal-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>
//
// which Verify checks. A failed delivery (network error, 5xx, 429) is
// retried with exponential backoff and full jitter, up to Webhook.Attempts
// times; 4xx answers other than 408 and 429 are final. What still fails is
// the caller's to dead-letter.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/buurtsignaal/buurtsignaal/domain"
)

// SignatureHeader is the header of the older signature, sent beside the
// Standard Webhooks headers for one version.
//
// Deprecated: verify webhook-signature (Standard Webhooks) instead; this
// header goes away in the next version.
const SignatureHeader = "Buurtsignaal-Signature"

// The Standard Webhooks headers.
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// SigningSecret is a webhook target's key as Standard Webhooks libraries
// take it: "whsec_" and the key in base64.
func SigningSecret(key []byte) string { return "whsec_" + base64.StdEncoding.EncodeToString(key) }

// StandardSignature is the webhook-signature value of a delivery: "v1,"
// and the base64 HMAC-SHA256 of "<id>.<unix seconds>.<body>".
func StandardSignature(key []byte, id string, t time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(t.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// The notification and its delivery are domain types; the notifier's code
// names them as before.
type (
	Notification = domain.Notification
	Delivery     = domain.Delivery
)

// Sign returns the older signature header value of body at time t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Errors of Verify.
var (
	ErrBadSignature = errors.New("notify: the signature does not match")
	ErrStale        = errors.New("notify: the signature is outside the replay window")
)

// Verify checks an older signature header (SignatureHeader) against body at now: the HMAC must match
// and its timestamp be within window of now (a replayed old delivery fails).
func Verify(secret []byte, header string, body []byte, now time.Time, window time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return ErrBadSignature
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, ts, body))) {
		return ErrBadSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrStale
	}
	return nil
}

// Webhook delivers signed notifications.
type Webhook struct {
	Client   *http.Client
	Attempts int           // tries per delivery (default 5)
	Base     time.Duration // first backoff (default 500ms); doubled each retry, full jitter
	Max      time.Duration // backoff cap (default 1 minute)
	Now      func() time.Time
	Sleep    func(context.Context, time.Duration) error
	// Retried counts retries, for metrics; may be nil.
	Retried func()
}

// Deliver posts body to url, signed with secret, retrying as the package
// documentation says. It returns nil once the receiver answered 2xx, and the
// last error otherwise (the caller dead-letters it).
func (w *Webhook) Deliver(ctx context.Context, url string, secret []byte, key string, body []byte) error {
	now := w.Now
	if now == nil {
		now = time.Now
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return retry(ctx, w.Attempts, w.Base, w.Max, w.Sleep, w.Retried, func() (bool, error) {
		return w.post(ctx, client, url, secret, key, body, now())
	})
}

func (w *Webhook) post(ctx context.Context, client *http.Client, url string, secret []byte, key string, body []byte, at time.Time) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", CloudEventsContentType)
	req.Header.Set("Idempotency-Key", key)
	req.Header.Set(HeaderWebhookID, key)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(HeaderWebhookSignature, StandardSignature(secret, key, at, body))
	req.Header.Set(SignatureHeader, Sign(secret, at, body))
	resp, err := client.Do(req)
	if err != nil {
		return ctx.Err() == nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("notify: webhook answered %d", resp.StatusCode)
	default:
		return false, fmt.Errorf("notify: webhook refused the notification: %d", resp.StatusCode)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
