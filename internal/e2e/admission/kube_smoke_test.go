package admission

import (
	"path/filepath"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

func TestKubeSmoke(t *testing.T) {
	ca := e2etest.TestCA(t, filepath.Join(t.TempDir(), "pki"))
	k := e2etest.StartKube(t, ca)
	k.CreateNamespace(t, "prod", nil)
	b := k.MustDo(t, "GET", "/api/v1/namespaces/prod/serviceaccounts", nil, nil)
	t.Logf("%s", b[:200])
}
