package testenv

// runRemote hands the test to the remote runner when configured. This stub
// (engineer "env") never does; engineer "runner" owns and replaces this file.
func (e *Env) runRemote() bool { return false }
