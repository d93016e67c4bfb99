package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"

	"github.com/quidpay/quid/store"
)

// storeFlags are the flags that choose where state is kept.
type storeFlags struct {
	data *string
	dsn  *string
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data: fs.String("data", defaultDataDir(), "data directory of the embedded SQLite store"),
		dsn:  fs.String("store", "", "store to use instead: postgres://… to share state between instances"),
	}
}

// defaultDataDir is $QUID_DATA, else ~/.quid.
func defaultDataDir() string {
	if d := os.Getenv("QUID_DATA"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".quid")
	}
	return ".quid"
}

// open opens the chosen store and says where it is.
func (s storeFlags) open(ctx context.Context) (*store.DB, string, error) {
	dsn := *s.dsn
	where := "PostgreSQL"
	if dsn == "" {
		if *s.data == "" {
			return nil, "", errors.New("--data or --store is required")
		}
		dsn = filepath.Join(*s.data, "quid.db")
		where = dsn
	}
	db, err := store.Open(ctx, dsn)
	return db, where, err
}
