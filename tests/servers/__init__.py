"""Loopback servers for tests and benchmarks, kept out of the runtime package.

`fault_server` (OpenAI and Anthropic chat shapes with seeded faults), `batch_server` (both providers' batch
endpoints, mounted on the fault server) and `llamacpp_server` (a real llama.cpp server on a CPU). pytest puts
tests/ on sys.path (rootdir conftest); benchmarks and the command line add it themselves:

    PYTHONPATH=tests python -m servers.fault_server --port 8009 --latency-s 0.05 --rate-429 0.1
"""
