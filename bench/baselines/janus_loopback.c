/* LD_PRELOAD shim that keeps Janus on loopback (bench/baselines/janus.py compiles it).
 *
 * Janus skips interfaces flagged IFF_LOOPBACK when it gathers ICE candidates, even with
 * ice_enforce_list = "lo", and falls back to the machine's network interface. Here
 * getifaddrs() reports one interface only: lo's IPv4 address, with IFF_LOOPBACK cleared, so
 * Janus binds and announces 127.0.0.1 and nothing else. The list is one allocation, freed
 * by our freeifaddrs(); libnice and Janus only ever pass it back there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

struct loopback_only {
	struct ifaddrs entry;
	struct sockaddr_in address;
	struct sockaddr_in netmask;
	char name[IFNAMSIZ];
};

int getifaddrs(struct ifaddrs **list) {
	int (*real_getifaddrs)(struct ifaddrs **) = dlsym(RTLD_NEXT, "getifaddrs");
	void (*real_freeifaddrs)(struct ifaddrs *) = dlsym(RTLD_NEXT, "freeifaddrs");
	struct ifaddrs *all;
	if (real_getifaddrs == NULL || real_freeifaddrs == NULL || real_getifaddrs(&all) != 0)
		return -1;
	struct loopback_only *found = NULL;
	for (struct ifaddrs *ifa = all; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_addr == NULL || ifa->ifa_addr->sa_family != AF_INET)
			continue;
		if (strcmp(ifa->ifa_name, "lo") != 0)
			continue;
		found = calloc(1, sizeof(*found));
		if (found == NULL)
			break;
		memcpy(&found->address, ifa->ifa_addr, sizeof(found->address));
		if (ifa->ifa_netmask != NULL)
			memcpy(&found->netmask, ifa->ifa_netmask, sizeof(found->netmask));
		strncpy(found->name, ifa->ifa_name, IFNAMSIZ - 1);
		found->entry.ifa_name = found->name;
		found->entry.ifa_flags = ifa->ifa_flags & ~IFF_LOOPBACK;
		found->entry.ifa_addr = (struct sockaddr *)&found->address;
		found->entry.ifa_netmask = (struct sockaddr *)&found->netmask;
		break;
	}
	real_freeifaddrs(all);
	if (found == NULL) {
		errno = ENODEV;
		return -1;
	}
	*list = &found->entry;
	return 0;
}

void freeifaddrs(struct ifaddrs *list) {
	/* entry is the first member: the pointer is the allocation. */
	free(list);
}
