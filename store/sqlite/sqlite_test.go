package sqlite_test

import (
	"testing"

	"github.com/sigillo/sigillo/store/storetest"
)

func TestConformance(t *testing.T) { storetest.Run(t, storetest.NewSQLite) }
