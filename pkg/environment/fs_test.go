package environment

import (
	"io/fs"

	"github.com/testship/testship/charts"
)

func chartsFS() fs.FS { return charts.FS }
