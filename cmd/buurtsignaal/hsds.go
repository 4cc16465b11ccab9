package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/buurtsignaal/buurtsignaal/adapters/hsds"
	"github.com/buurtsignaal/buurtsignaal/domain"
	"github.com/buurtsignaal/buurtsignaal/domain/app"
)

// The sociale kaart in Open Referral's HSDS 3.0 (adapters/hsds): the
// server exports it at GET /v1/organisations?format=hsds, and
// `buurtsignaal import-hsds FILE` registers the organisations of an HSDS
// document that the network's sociale kaart does not hold yet, through the
// running server's admin socket when one holds the data directory.

// importOrgID is what an organisation id may be (as POST /v1/organisations
// says).
var importOrgID = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

// hsdsImport is what an import did.
type hsdsImport struct {
	Added   []string `json:"added"`
	Present []string `json:"present"`
	Error   string   `json:"error,omitempty"`
}

// importHSDS registers the organisations of data in network that are not
// on its sociale kaart yet, as the admin system:import-hsds.
func (s *system) importHSDS(ctx context.Context, network string, data []byte) (hsdsImport, error) {
	var out hsdsImport
	orgs, err := hsds.Import(data)
	if err != nil {
		return out, err
	}
	for _, o := range orgs {
		if !importOrgID.MatchString(o.ID) {
			return out, fmt.Errorf("import-hsds: organisation %q: its id %q is not 1 to 100 lower-case letters, digits, '.', '_' or '-' (give it a buurtsignaal-id identifier)", o.Name, o.ID)
		}
	}
	for _, o := range orgs {
		var present, elsewhere bool
		s.runner.Read(func() {
			got, ok := s.orgs.Get(o.ID)
			present, elsewhere = ok && got.Network == network, ok && got.Network != network
		})
		if elsewhere {
			return out, fmt.Errorf("import-hsds: organisation id %q is taken by another network: give it another buurtsignaal-id identifier", o.ID)
		}
		if present {
			out.Present = append(out.Present, o.ID)
			continue
		}
		req := app.Request{Actor: domain.Principal{ID: "system:import-hsds", Roles: []domain.Role{domain.RoleAdmin}, Network: network},
			RequestID: "import-hsds", IdempotencyKey: "import-hsds-" + o.ID}
		if _, err := s.app.RegisterOrganisation(ctx, req, o); err != nil {
			if domain.KindOf(err) == domain.KindConflict {
				out.Present = append(out.Present, o.ID)
				continue
			}
			return out, fmt.Errorf("import-hsds: organisation %s: %w", o.ID, err)
		}
		out.Added = append(out.Added, o.ID)
	}
	return out, nil
}

// adminHSDS answers POST /import-hsds?network= on the admin socket.
func (s *system) adminHSDS(mux *http.ServeMux, log *slog.Logger) {
	mux.HandleFunc("POST /import-hsds", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxHSDSBytes+1))
		var out hsdsImport
		if err == nil && len(data) > maxHSDSBytes {
			err = errors.New("import-hsds: the file is larger than 64 MiB")
		}
		if err == nil {
			out, err = s.importHSDS(r.Context(), r.URL.Query().Get("network"), data)
		}
		if err != nil {
			log.Error("import-hsds", "err", err, "added", len(out.Added))
			out.Error = err.Error()
		}
		_ = json.NewEncoder(w).Encode(out)
	})
}

// maxHSDSBytes bounds an HSDS file.
const maxHSDSBytes = 64 << 20

// importHSDSCmd is `buurtsignaal import-hsds [flags] FILE`.
func importHSDSCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, fs, err := loadConfig("import-hsds", args, getenv, output(stderr))
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("import-hsds: give one HSDS JSON file")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("import-hsds: %w", err)
	}
	if len(data) > maxHSDSBytes {
		return errors.New("import-hsds: the file is larger than 64 MiB")
	}
	if _, err := hsds.Import(data); err != nil { // a bad file is refused before anything opens
		return err
	}
	var out hsdsImport
	if serverHolds(cfg) {
		fmt.Fprintf(stderr, "import-hsds: the data directory %s is held by a running server: importing through its admin socket\n", cfg.DataDir)
		if err := askAdminBody(ctx, adminSocket(cfg), "/import-hsds?network="+url.QueryEscape(cfg.Network), data, &out); err != nil {
			return err
		}
		if out.Error != "" {
			err = errors.New(out.Error)
		}
	} else {
		sys, stop, oerr := openCaughtUp(ctx, "import-hsds", cfg, stderr)
		if oerr != nil {
			return oerr
		}
		defer sys.Close()
		defer func() { _ = stop() }()
		out, err = sys.importHSDS(ctx, cfg.Network, data)
	}
	fmt.Fprintf(stdout, "import-hsds: registered %d organisations (%s); %d already on the sociale kaart (%s)\n",
		len(out.Added), strings.Join(out.Added, ", "), len(out.Present), strings.Join(out.Present, ", "))
	return err
}
