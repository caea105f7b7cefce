"""hubbub's own benchmarks: fan-out (`python -m bench.fanout`) and persistence
(`python -m bench.persist`). Each starts real servers on 127.0.0.1 and drives them over
real WebSockets; see the "Performance" section of README.md."""
