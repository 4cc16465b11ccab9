// Command apiclient is a small integrator's program on the typed Go client
// that oapi-codegen generates from Buurtsignaal's /openapi.json (into
// ./client: TestGeneratedClient generates it, builds this program and runs
// it against the real server). It raises a signal as a professional, hands
// it over to the professional's team, accepts it, reads the case back and
// checks what it reads, and reads a signal that does not exist to see the
// typed problem. It prints ids and codes only, never the resident's data.
//
//	apiclient -url http://127.0.0.1:8080 -token demo-anna -team basisteam-beesd
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/buurtsignaal/buurtsignaal/scripts/apiclient/client"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the server's address")
	token := flag.String("token", "", "a professional's bearer token")
	team := flag.String("team", "", "the professional's team")
	flag.Parse()
	if err := run(*url, *token, *team); err != nil {
		fmt.Fprintln(os.Stderr, "apiclient:", err)
		os.Exit(1)
	}
}

func run(url, token, team string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bearer := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	c, err := client.NewClientWithResponses(url, client.WithRequestEditorFn(bearer))
	if err != nil {
		return err
	}
	key := func(what string) *string { k := "apiclient-" + what + "-" + uuid.NewString(); return &k }

	name, address := "Generated Client Testpersoon", "Dorpsstraat 9"
	raised, err := c.RaiseSignalWithResponse(ctx, &client.RaiseSignalParams{IdempotencyKey: key("raise")}, client.RaiseSignalJSONRequestBody{
		Subject:       client.SubjectBody{Name: name, Address: &address},
		Neighbourhood: "centrum",
		Categories:    []string{"loneliness"}, // the network's own set (GET /v1/categories)
		Urgency:       client.UrgencyHigh,
		Description:   "Raised through the generated client.",
		Consent:       client.ConsentInformed,
	})
	if err != nil {
		return fmt.Errorf("raise: %w", err)
	}
	if raised.JSON201 == nil {
		return fmt.Errorf("raise: %d %s", raised.StatusCode(), raised.Body)
	}
	id, err := uuid.Parse(raised.JSON201.Id)
	if err != nil {
		return fmt.Errorf("raise answered id %q: %w", raised.JSON201.Id, err)
	}
	fmt.Printf("raised signal %s: version %d, position %d\n", id, raised.JSON201.Version, raised.JSON201.Position)

	ifMatch := func(v int) *string { s := strconv.Quote(strconv.Itoa(v)); return &s }
	handed, err := c.HandOverSignalWithResponse(ctx, id, &client.HandOverSignalParams{IdempotencyKey: key("handover"), IfMatch: ifMatch(raised.JSON201.Version)},
		client.HandOverSignalJSONRequestBody{TeamId: &team})
	if err != nil || handed.JSON200 == nil {
		return fmt.Errorf("hand over: %v %d %s", err, handed.StatusCode(), handed.Body)
	}
	accepted, err := c.AcceptHandoverWithResponse(ctx, id, &client.AcceptHandoverParams{IdempotencyKey: key("accept"), IfMatch: ifMatch(handed.JSON200.Version)})
	if err != nil || accepted.JSON200 == nil {
		return fmt.Errorf("accept: %v %d %s", err, accepted.StatusCode(), accepted.Body)
	}
	fmt.Printf("handed over to %s and accepted: version %d\n", team, accepted.JSON200.Version)

	pos := accepted.JSON200.Position
	got, err := c.GetSignalWithResponse(ctx, id, &client.GetSignalParams{MinPosition: &pos})
	if err != nil || got.JSON200 == nil {
		return fmt.Errorf("read back: %v %d %s", err, got.StatusCode(), got.Body)
	}
	sig := got.JSON200
	switch {
	case sig.Id != id:
		return fmt.Errorf("read back signal %s, want %s", sig.Id, id)
	case sig.Status != client.SignalStatusInCare:
		return fmt.Errorf("read back status %q, want in_care", sig.Status)
	case sig.Urgency != client.UrgencyHigh || len(sig.Categories) != 1 || sig.Categories[0] != "loneliness":
		return fmt.Errorf("read back urgency %q and categories %v", sig.Urgency, sig.Categories)
	case sig.Subject.Name == nil || *sig.Subject.Name != name || sig.Subject.Address == nil || *sig.Subject.Address != address:
		return fmt.Errorf("read back a subject other than the one raised")
	case sig.TeamId == nil || *sig.TeamId != team:
		return fmt.Errorf("read back team %v, want %s", sig.TeamId, team)
	}
	fmt.Printf("read back signal %s: status %s, urgency %s, team %s, the subject as raised, ETag %s\n", sig.Id, sig.Status, sig.Urgency, *sig.TeamId, got.HTTPResponse.Header.Get("ETag"))

	missing, err := c.GetSignalWithResponse(ctx, uuid.New(), &client.GetSignalParams{})
	if err != nil {
		return fmt.Errorf("read a missing signal: %w", err)
	}
	if missing.ApplicationproblemJSON404 == nil || missing.ApplicationproblemJSON404.Status != http.StatusNotFound {
		return fmt.Errorf("a missing signal answered %d %s, want a 404 problem", missing.StatusCode(), missing.Body)
	}
	fmt.Printf("a signal that does not exist: %d problem %q\n", missing.ApplicationproblemJSON404.Status, *missing.ApplicationproblemJSON404.Code)
	return nil
}
