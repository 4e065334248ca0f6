package kmip

import "time"

// Messages are processed on reused goroutines, not one new goroutine per
// message: a new goroutine starts with a small stack and grew it, copying
// it, on every Create+Get (the profile put 7% of the pair path's CPU in
// runtime.copystack). A worker keeps its grown stack between messages.

// workerIdle is how long an idle worker waits for a message before it ends.
const workerIdle = time.Second

// spawn runs fn on an idle worker, or on a new one when none is idle, so
// messages never wait for each other.
func (s *Server) spawn(fn func()) {
	select {
	case s.work <- fn:
	default:
		go s.worker(fn)
	}
}

func (s *Server) worker(fn func()) {
	fn()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case fn := <-s.work:
			fn()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-s.ctx.Done():
			return
		}
	}
}
