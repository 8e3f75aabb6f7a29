"""Read projections of the node log (sqlite-utils): registers and statistics."""
