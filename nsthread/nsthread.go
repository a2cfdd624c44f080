package nsthread

import "runtime"

// Run runs enter on a new OS thread and then, if enter succeeded, fn on
// the same thread; it returns the first error. The thread ends with them.
func Run(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		if err := enter(); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}
