"""Real game environments behind one interface: `reset() -> obs`, `step(a) -> (obs, reward, done)`."""
