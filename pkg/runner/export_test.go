package runner

// SetLaunchHook sets the function Launch calls after each of its steps
// ("checked", "job", "lease", "identity", "resumed"); an error from it stops
// Launch there with no clean-up, as a kill would. It returns a func that
// removes the hook.
func SetLaunchHook(f func(step string) error) (restore func()) {
	launchHook = f
	return func() { launchHook = nil }
}
