"""The storage seam: what the services need stored; the implementations live in
hubbub/adapters/."""
