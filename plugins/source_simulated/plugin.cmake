metronome_plugin(source_simulated m)
