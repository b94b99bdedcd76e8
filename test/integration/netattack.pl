#!/usr/bin/perl
# netattack.pl: what a local user of a node tries against a multi-node job's
# private network (issue 14, finding 7). perl-base only (Essential in
# Debian). Each prints one line; the caller judges it.
#
#   netattack.pl inject DEV DST PORT COUNT
#       COUNT UDP datagrams to DST:PORT sent out of interface DEV
#       (SO_BINDTODEVICE, which needs no privilege since Linux 5.7;
#       broadcast allowed). Prints "sent N" or "refused <errno text>".
#   netattack.pl mcast GROUP PORT SECONDS
#       joins a multicast group (the old per-job segment: 239.192/10 + the
#       job id, port 7700) and counts what arrives. Prints "received N".
#   netattack.pl mcast-send GROUP PORT COUNT
#       sends datagrams to that group. Prints "sent N" or "refused ...".
#   netattack.pl sniff
#       opens a packet socket (what a sniffer needs). Prints "opened" or
#       "refused <errno text>".
#   netattack.pl tcp DST PORT [DEV]
#       a TCP connection to DST:PORT (out of DEV). Prints "connected" or
#       "refused <errno text>".
#   netattack.pl capture DEV PORT SECONDS OUT     (root: the test's own
#       sniffer, for the replay) the TCP payload sent to PORT through DEV,
#       in sequence order, into OUT; prints "captured N bytes".
use strict;
use warnings;
use Socket qw(:all);
use IO::Select;
use Time::HiRes qw(time sleep);

my $SO_BINDTODEVICE = 25;
my $IP_ADD_MEMBERSHIP = 35;
my $AF_PACKET = 17;
my $ETH_P_ALL = 3;

sub udp_socket {
	socket(my $s, PF_INET, SOCK_DGRAM, 0) or die "socket: $!\n";
	setsockopt($s, SOL_SOCKET, SO_BROADCAST, 1);
	return $s;
}

sub bind_dev {
	my ($s, $dev) = @_;
	return 1 unless defined $dev && $dev ne '';
	return setsockopt($s, SOL_SOCKET, $SO_BINDTODEVICE, $dev);
}

sub inject {
	my ($dev, $dst, $port, $count) = @_;
	my $s = udp_socket();
	bind_dev($s, $dev) or return print "refused bind to $dev: $!\n";
	my $to = sockaddr_in($port, inet_aton($dst));
	my $sent = 0;
	for my $i (1 .. $count) {
		if (send($s, "vmenv-netattack $i", 0, $to)) {
			$sent++;
		} elsif ($sent == 0) {
			return print "refused $!\n";
		}
		sleep(0.002) if $i % 50 == 0;
	}
	print "sent $sent\n";
}

sub mcast {
	my ($group, $port, $secs) = @_;
	my $s = udp_socket();
	setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1);
	bind($s, sockaddr_in($port, INADDR_ANY)) or return print "refused bind: $!\n";
	setsockopt($s, IPPROTO_IP, $IP_ADD_MEMBERSHIP,
		inet_aton($group) . INADDR_ANY) or return print "refused join: $!\n";
	my $sel = IO::Select->new($s);
	my ($n, $end) = (0, time() + $secs);
	while ((my $left = $end - time()) > 0) {
		last unless $sel->can_read($left);
		recv($s, my $buf, 65536, 0);
		$n++;
	}
	print "received $n\n";
}

sub mcast_send {
	my ($group, $port, $count) = @_;
	my $s = udp_socket();
	my $to = sockaddr_in($port, inet_aton($group));
	my $sent = 0;
	for (1 .. $count) {
		send($s, "vmenv-netattack", 0, $to) or return print "refused $!\n";
		$sent++;
	}
	print "sent $sent\n";
}

sub sniff {
	if (socket(my $s, $AF_PACKET, SOCK_RAW, unpack('n', pack('S', $ETH_P_ALL)))) {
		print "opened\n";
	} else {
		print "refused $!\n";
	}
}

sub tcp {
	my ($dst, $port, $dev) = @_;
	socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
	bind_dev($s, $dev) or return print "refused bind to $dev: $!\n";
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 5;
	my $ok = eval { connect($s, sockaddr_in($port, inet_aton($dst))) };
	alarm 0;
	print $ok ? "connected\n" : "refused " . ($@ ? "timed out" : $!) . "\n";
}

# Ethernet + IPv4 + TCP to PORT: the payload at its sequence number.
sub capture {
	my ($dev, $port, $secs, $out) = @_;
	socket(my $s, $AF_PACKET, SOCK_RAW, unpack('n', pack('S', $ETH_P_ALL)))
		or return print "refused $!\n";
	my $ifindex = (split ' ', `cat /sys/class/net/$dev/ifindex 2>/dev/null`)[0]
		or return print "refused no interface $dev\n";
	# struct sockaddr_ll: family, protocol, ifindex, then zeros.
	bind($s, pack('S n i S C C a8', $AF_PACKET, $ETH_P_ALL, $ifindex, 0, 0, 0, ''))
		or return print "refused bind: $!\n";
	my (%seg, $base);
	my $sel = IO::Select->new($s);
	my $end = time() + $secs;
	while ((my $left = $end - time()) > 0) {
		last unless $sel->can_read($left);
		recv($s, my $f, 65536, 0);
		next if length($f) < 54 || unpack('n', substr($f, 12, 2)) != 0x0800;
		my $ihl = (unpack('C', substr($f, 14, 1)) & 15) * 4;
		next if unpack('C', substr($f, 23, 1)) != 6;
		my $iplen = unpack('n', substr($f, 16, 2));
		my $t = 14 + $ihl;
		my ($dport, $seq) = (unpack('n', substr($f, $t + 2, 2)), unpack('N', substr($f, $t + 4, 4)));
		next if $dport != $port;
		my $off = (unpack('C', substr($f, $t + 12, 1)) >> 4) * 4;
		my $len = $iplen - $ihl - $off;
		next if $len <= 0;
		$seg{$seq} = substr($f, $t + $off, $len);
	}
	my $data = join '', map { $seg{$_} } sort { $a <=> $b } keys %seg;
	open my $fh, '>', $out or die "$out: $!\n";
	binmode $fh;
	print $fh $data;
	close $fh;
	print "captured " . length($data) . " bytes\n";
}

my $cmd = shift @ARGV // '';
if ($cmd eq 'inject' && @ARGV == 4) { inject(@ARGV) }
elsif ($cmd eq 'mcast' && @ARGV == 3) { mcast(@ARGV) }
elsif ($cmd eq 'mcast-send' && @ARGV == 3) { mcast_send(@ARGV) }
elsif ($cmd eq 'sniff') { sniff() }
elsif ($cmd eq 'tcp' && (@ARGV == 2 || @ARGV == 3)) { tcp(@ARGV) }
elsif ($cmd eq 'capture' && @ARGV == 4) { capture(@ARGV) }
else { die "usage: netattack.pl inject|mcast|mcast-send|sniff|tcp|capture ...\n" }
