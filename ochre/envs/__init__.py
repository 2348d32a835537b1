"""Real game environments behind one interface: `reset() -> obs`, `step(a) -> (obs, reward, done)`.

Importing this package registers the Procgen games as Gymnasium ids
(`gymnasium.make("procgen-coinrun-v0")`). The worlds themselves are built by
name through `ochre.envs.worlds`.
"""

from ochre.envs.procgen import register_gymnasium_envs

register_gymnasium_envs()
