package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// A webhook's body is a CloudEvents 1.0 event in the structured JSON mode
// (Content-Type application/cloudevents+json), so receivers can take it
// with any CloudEvents SDK:
//
//	{"specversion": "1.0", "id": "<the idempotency key>", "source": "<the public URL>",
//	 "type": "nl.buurtsignaal.signal.handed_over", "subject": "<signal id>",
//	 "time": "2026-12-04T09:15:00Z", "datacontenttype": "application/json",
//	 "data": {"id": ..., "kind": "handed_over", "signal_id": ..., "team_id": ..., "link": ..., "at": ..., "network": ...}}
//
// data is the notification as before (ids, codes and a link, never personal
// data); id is its idempotency key, the same on every retry and in the
// webhook-id header.

// CloudEventsContentType is a structured CloudEvent's media type.
const CloudEventsContentType = "application/cloudevents+json; charset=utf-8"

// EventTypePrefix is the start of every event type; the notification's
// kind follows it.
const EventTypePrefix = "nl.buurtsignaal.signal."

// cloudEvent is the structured-mode envelope of a notification.
type cloudEvent struct {
	SpecVersion     string       `json:"specversion"`
	ID              string       `json:"id"`
	Source          string       `json:"source"`
	Type            string       `json:"type"`
	Subject         string       `json:"subject,omitempty"`
	Time            time.Time    `json:"time"`
	DataContentType string       `json:"datacontenttype"`
	Data            Notification `json:"data"`
}

// EventSource is the CloudEvents source of a server whose public address
// is baseURL: the address itself, or a URN when it has none.
func EventSource(baseURL string) string {
	if baseURL = strings.TrimSuffix(baseURL, "/"); baseURL != "" {
		return baseURL
	}
	return "urn:buurtsignaal"
}

// Event encodes n as a CloudEvent from source.
func Event(n Notification, source string) ([]byte, error) {
	return json.Marshal(cloudEvent{
		SpecVersion: "1.0", ID: n.ID, Source: source, Type: EventTypePrefix + n.Kind, Subject: n.Signal,
		Time: n.At.UTC(), DataContentType: "application/json", Data: n,
	})
}

// DecodeEvent reads the notification out of a webhook's CloudEvent body: a
// receiver written in Go may use it, or any CloudEvents SDK.
func DecodeEvent(body []byte) (Notification, error) {
	var e cloudEvent
	if err := json.Unmarshal(body, &e); err != nil {
		return Notification{}, err
	}
	if e.SpecVersion != "1.0" || e.ID == "" || e.ID != e.Data.ID || e.Type != EventTypePrefix+e.Data.Kind {
		return Notification{}, fmt.Errorf("notify: not a notification's CloudEvent")
	}
	return e.Data, nil
}
