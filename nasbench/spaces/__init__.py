"""Search spaces: network geometry and enumeration of the op instances a space places."""
