"""driftsentinel: a streaming drift monitor for ML feature streams on Kafka.

The one import package of the distribution. Its three subpackages are the project's
top-level folders, linked here so the source tree and the installed wheel have the same
module names:

- ``driftsentinel.schemas`` (``schemas/``): the contracts: events, alerts, configuration,
  reference profile, the core's output types;
- ``driftsentinel.detectors`` (``detectors/``): the functional core: detector kernels,
  sketches, tests, the bank and the engine (no I/O, no clock);
- ``driftsentinel.stream`` (``stream/``): the shell: Kafka loop, replay, CLI, metrics.

``docs/architecture.md`` shows the layout and the data flow.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("driftsentinel")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
