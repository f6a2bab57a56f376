// Package charts embeds the Helm charts of this repository (one directory
// per chart) so testship deploys them without the source tree; set
// LOCAL_CHARTS=true to read them from disk instead while editing them.
package charts

import "embed"

// FS holds every chart directory, e.g. "link/Chart.yaml".
//
//go:embed all:link
var FS embed.FS
