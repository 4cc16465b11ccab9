package domain

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidateNotificationTargets(t *testing.T) {
	known := func(sub, id string) bool {
		return sub == SubscribeTeam && id == "team-a" || sub == SubscribeOrganisation && id == "school"
	}
	hook := NotificationTarget{ID: "t1", Subscriber: SubscribeTeam, SubscriberID: "team-a", Channel: ChannelWebhook, URL: "https://hooks.example/in"}
	mail := NotificationTarget{ID: "t2", Subscriber: SubscribeCoordinators, Channel: ChannelEmail, Email: "coordinatie@example.org", Language: "en"}
	with := func(t NotificationTarget, f func(*NotificationTarget)) NotificationTarget { f(&t); return t }
	tests := []struct {
		name    string
		targets []NotificationTarget
		fields  []string // fields of the errors; nil: valid
	}{
		{"empty list", nil, nil},
		{"webhook and email", []NotificationTarget{hook, mail}, nil},
		{"organisation and principal", []NotificationTarget{
			with(hook, func(t *NotificationTarget) { t.Subscriber, t.SubscriberID = SubscribeOrganisation, "school" }),
			with(mail, func(t *NotificationTarget) { t.Subscriber, t.SubscriberID = SubscribePrincipal, "any-principal" }),
		}, nil},
		{"http on loopback", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.URL = "http://127.0.0.1:9000/in" })}, nil},
		{"kinds", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.Kinds = []string{NotifyMatched, "gossip"} })}, []string{"targets[0].kinds[1]"}},
		{"missing id", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.ID = " " })}, []string{"targets[0].id"}},
		{"id with a space", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.ID = "a b" })}, []string{"targets[0].id"}},
		{"id twice", []NotificationTarget{hook, with(mail, func(t *NotificationTarget) { t.ID = "t1" })}, []string{"targets[1].id"}},
		{"unknown subscriber", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.Subscriber = "everyone" })}, []string{"targets[0].subscriber"}},
		{"unknown team", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.SubscriberID = "team-z" })}, []string{"targets[0].subscriber_id"}},
		{"unknown organisation", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.Subscriber = SubscribeOrganisation })}, []string{"targets[0].subscriber_id"}},
		{"team without id", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.SubscriberID = "" })}, []string{"targets[0].subscriber_id"}},
		{"coordinators with id", []NotificationTarget{with(mail, func(t *NotificationTarget) { t.SubscriberID = "x" })}, []string{"targets[0].subscriber_id"}},
		{"plain http", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.URL = "http://hooks.example/in" })}, []string{"targets[0].url"}},
		{"relative url", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.URL = "/in" })}, []string{"targets[0].url"}},
		{"credentials in url", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.URL = "https://u:p@hooks.example/in" })}, []string{"targets[0].url"}},
		{"webhook with email", []NotificationTarget{with(hook, func(t *NotificationTarget) { t.Email = "a@example.org" })}, []string{"targets[0].email"}},
		{"bad email", []NotificationTarget{with(mail, func(t *NotificationTarget) { t.Email = "Anna <a@example.org>" })}, []string{"targets[0].email"}},
		{"email with url", []NotificationTarget{with(mail, func(t *NotificationTarget) { t.URL = "https://x.example" })}, []string{"targets[0].url"}},
		{"unknown channel", []NotificationTarget{with(mail, func(t *NotificationTarget) { t.Channel = "sms" })}, []string{"targets[0].channel"}},
		{"unknown language", []NotificationTarget{with(mail, func(t *NotificationTarget) { t.Language = "fr" })}, []string{"targets[0].language"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateNotificationTargets(tt.targets, known)
			var got []string
			if e := AsError(err); e != nil {
				for _, f := range e.Fields {
					got = append(got, f.Field)
				}
			} else if err != nil {
				t.Fatalf("error %v is not a domain error", err)
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("fields with errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTargetsOf(t *testing.T) {
	targets := []NotificationTarget{
		{ID: "all", Subscriber: SubscribeTeam, SubscriberID: "a"},
		{ID: "handover-only", Subscriber: SubscribeTeam, SubscriberID: "a", Kinds: []string{NotifyHandedOver}},
		{ID: "other-team", Subscriber: SubscribeTeam, SubscriberID: "b"},
		{ID: "org-a", Subscriber: SubscribeOrganisation, SubscriberID: "a"},
	}
	ids := func(ts []NotificationTarget) (out []string) {
		for _, t := range ts {
			out = append(out, t.ID)
		}
		return out
	}
	if diff := cmp.Diff([]string{"all", "handover-only"}, ids(TargetsOf(targets, NotifyHandedOver, SubscribeTeam, "a"))); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"all"}, ids(TargetsOf(targets, NotifyMatched, SubscribeTeam, "a"))); diff != "" {
		t.Error(diff)
	}
	if diff := cmp.Diff([]string{"org-a"}, ids(TargetsOf(targets, NotifyReferralMade, SubscribeOrganisation, "a"))); diff != "" {
		t.Error(diff)
	}
}
