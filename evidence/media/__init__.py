"""Media handling for playback: reading encrypted originals as files, probing what a
browser can play, and making playback proxies without plaintext ever touching disk."""
