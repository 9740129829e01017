"""The engine: checks claims against specs (statistics, runner, diagnosis, identify, compare)."""
