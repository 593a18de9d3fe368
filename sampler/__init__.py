"""The sampler: probe requests -> k sampled responses each (transformers, or an OpenAI-compatible server).

See ``valuedrift.sampler.service`` (Kafka I/O), ``valuedrift.sampler.backends`` and the README section "Sampler".
"""
