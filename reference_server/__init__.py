"""STUI reference server: sans-I/O engine, storage, evaluator and ZeroMQ transport."""
