// Package sqlitecheck reads a column of a SQLite table, for the whsink tests: they check
// what the sink loaded with SQLite itself, not through the library under test (cgo is not
// allowed in _test.go files, and a Go SQL driver would be a heavy dependency for one query).
package sqlitecheck

// #cgo LDFLAGS: -lsqlite3
// #include <stdlib.h>
// #include <sqlite3.h>
import "C"

import (
	"fmt"
	"unsafe"
)

// Column returns every value of column col of table in the database file at path, as text,
// in rowid order. The names are quoted as SQL identifiers; they must not contain '"'.
func Column(path, table, col string) ([]string, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var db *C.sqlite3
	if rc := C.sqlite3_open_v2(cpath, &db, C.SQLITE_OPEN_READONLY, nil); rc != C.SQLITE_OK {
		C.sqlite3_close(db) // a handle is returned even on failure
		return nil, fmt.Errorf("open %s: %s", path, C.GoString(C.sqlite3_errstr(rc)))
	}
	defer C.sqlite3_close(db)
	csql := C.CString(fmt.Sprintf(`SELECT "%s" FROM "%s" ORDER BY rowid`, col, table))
	defer C.free(unsafe.Pointer(csql))
	var st *C.sqlite3_stmt
	if rc := C.sqlite3_prepare_v2(db, csql, -1, &st, nil); rc != C.SQLITE_OK {
		return nil, fmt.Errorf("prepare: %s", C.GoString(C.sqlite3_errmsg(db)))
	}
	defer C.sqlite3_finalize(st)
	var out []string
	for {
		switch rc := C.sqlite3_step(st); rc {
		case C.SQLITE_ROW:
			out = append(out, C.GoString((*C.char)(unsafe.Pointer(C.sqlite3_column_text(st, 0)))))
		case C.SQLITE_DONE:
			return out, nil
		default:
			return nil, fmt.Errorf("step: %s", C.GoString(C.sqlite3_errmsg(db)))
		}
	}
}
