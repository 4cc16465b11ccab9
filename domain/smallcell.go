package domain

// The small-cell rule of published figures: a count that describes fewer
// than SmallCellK signals (but some) is not shown, and neither is a figure
// derived from a group of fewer (a share, a median), so that a figure of a
// small neighbourhood or category cannot point at a resident. It is the
// one place the rule lives; the monitoring exports apply it.

// SmallCellK is the fewest signals a published figure may describe.
const SmallCellK = 5

// SmallCell reports whether a count of n signals is too small to publish:
// 1 to SmallCellK-1 (0 describes no one and is published).
func SmallCell(n int) bool { return n > 0 && n < SmallCellK }

// SuppressedCell is what an export writes for a suppressed figure.
const SuppressedCell = "<5"
