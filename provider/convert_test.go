package provider

import (
	"reflect"
	"testing"

	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/loadavg"
	"github.com/cgprocfs/cgprocfs/procfiles"
)

// fill sets every number of v (a pointer to a struct) to a distinct value
// and every bool to true, descending into nested structs.
func fill(v reflect.Value, next *uint64) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			fill(f, next)
		case reflect.Bool:
			f.SetBool(true)
		default:
			*next++
			f.SetUint(*next)
		}
	}
}

// sameFields reports where from and to, structs with the same field names,
// differ, so that a field added on one side and not copied fails here.
func sameFields(t *testing.T, path string, from, to reflect.Value) {
	t.Helper()
	if from.NumField() != to.NumField() {
		t.Errorf("%s: %d fields, converted to %d", path, from.NumField(), to.NumField())
	}
	for i := range to.NumField() {
		name := to.Type().Field(i).Name
		src := from.FieldByName(name)
		if !src.IsValid() {
			t.Errorf("%s.%s: no such field in %s", path, name, from.Type())
			continue
		}
		if src.Kind() == reflect.Struct {
			sameFields(t, path+"."+name, src, to.Field(i))
			continue
		}
		if !reflect.DeepEqual(src.Interface(), to.Field(i).Interface()) {
			t.Errorf("%s.%s: %v converted to %v", path, name, src, to.Field(i))
		}
	}
}

func TestConversionsCopyEveryField(t *testing.T) {
	var n uint64
	var io cgroupview.DeviceIO
	fill(reflect.ValueOf(&io).Elem(), &n)
	sameFields(t, "DeviceIO", reflect.ValueOf(io), reflect.ValueOf(diskIO(io)))

	var dev cgroupview.Dev
	fill(reflect.ValueOf(&dev).Elem(), &n)
	sameFields(t, "Dev", reflect.ValueOf(dev), reflect.ValueOf(diskDev(dev)))

	if a := (loadavg.Avg{1, 2, 3}); loadAverages(a) != (procfiles.LoadAverages{1, 2, 3}) {
		t.Errorf("load averages %v converted to %v", a, loadAverages(a))
	}
}
