"""Golden datasets: hand-built seeds whose flags and planned writes are reviewed like code."""
