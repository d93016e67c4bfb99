package proxy

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// Every key the file format has appears in the example file, which documents them.
func TestExampleDocumentsEveryKey(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile("../examples/quid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[file]().PkgPath() {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if key == "" {
				continue
			}
			if !regexp.MustCompile(`(?m)^[ -]*` + regexp.QuoteMeta(key) + `:`).Match(example) {
				t.Errorf("examples/quid.yaml does not document %s (in %s)", key, typ.Name())
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[file]())
}
