/*
 * testport.h - a port for a test's server
 *
 * Tests run in parallel, and every outgoing connection of every test takes a port from the kernel's
 * ephemeral range (ip_local_port_range, 32768-60999 here). A server port picked with bind(port 0) comes
 * from that same range, so another test's client can take it between the pick and the server's bind.
 * Ports are therefore picked at random below that range and checked to be free.
 */
#ifndef RP_TESTPORT_H
#define RP_TESTPORT_H

/* A free loopback TCP port in [20000, 32768); aborts the test if none is found. */
int rp_test_free_port(void);

#endif
