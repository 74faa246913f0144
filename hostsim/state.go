package hostsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// DefaultStatePath is where the realmctl host commands keep their state unless
// told otherwise.
const DefaultStatePath = "realmctl-host.json"

// Tenant is one installation the simulated host made: what it needs to sign
// calls as that tenant and to find the app again.
type Tenant struct {
	ClientKey      string `json:"clientKey"`
	SharedSecret   string `json:"sharedSecret"`
	Realm          string `json:"realm"` // the tenant's current realm: "global" or a regionBaseUrls key
	DescriptorURL  string `json:"descriptorUrl"`
	AppKey         string `json:"appKey,omitempty"`
	SiteURL        string `json:"siteUrl"` // the fake product site, https://<clientKey>.atlassian.net
	InstallationID string `json:"installationId,omitempty"`
	Installed      bool   `json:"installed"`
	Enabled        bool   `json:"enabled"`
	// Forge is set for a Forge installation: ClientKey is then its
	// installation id, and calls carry Forge Invocation Tokens.
	Forge *ForgeInstall `json:"forge,omitempty"`
}

// state is the JSON the host keeps between commands. It holds the signed-install
// private key and the tenants' shared secrets, so it is written 0600.
type state struct {
	// PrivateKeyPEM is the host's signed-install key (PKCS#8), KeyID its kid.
	PrivateKeyPEM string `json:"privateKeyPem,omitempty"`
	KeyID         string `json:"keyId,omitempty"`
	KeysURL       string `json:"keysUrl,omitempty"`
	// ForgeKeyPEM signs Forge Invocation Tokens, published as ForgeKeyID in
	// the JWKS `realmctl host forge-jwks` serves.
	ForgeKeyPEM string `json:"forgeKeyPem,omitempty"`
	ForgeKeyID  string `json:"forgeKeyId,omitempty"`
	// ProductURL is where `realmctl host product` serves the product stub.
	ProductURL string             `json:"productUrl,omitempty"`
	Tenants    map[string]*Tenant `json:"tenants,omitempty"`
}

func loadState(path string) (*state, error) {
	st := &state{}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	} else if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("parse state file %s: %w", path, err)
	}
	return st, nil
}

// save writes atomically, so a concurrent reader (another realmctl command)
// never sees half a file.
func (st *state) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".realmctl-host-*.json")
	if err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}

func (st *state) sortedTenants() []Tenant {
	out := make([]Tenant, 0, len(st.Tenants))
	for _, t := range st.Tenants {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientKey < out[j].ClientKey })
	return out
}
