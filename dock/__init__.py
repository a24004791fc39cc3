"""The docking-station agent: detects cameras, offloads, uploads, wipes after receipts."""
