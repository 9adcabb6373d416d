"""Everything that talks to sensor firmware: pure codecs and the transports behind one `Source`."""
