"""The sampler: probe requests -> k sampled responses each (transformers, or an OpenAI-compatible server).

See ``sampler.service`` (Kafka I/O), ``sampler.backends`` and the README section "Sampler".
"""
