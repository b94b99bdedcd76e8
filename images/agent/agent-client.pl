#!/usr/bin/perl
# agent-client.pl: the host side of the agent protocol (common/agentwire.h),
# for testing images without vmmd: waits for HELLO, sends SETUP, runs
# commands as the job would, and can power the guest off. perl-base is
# Essential in Debian, so this needs nothing installed.
#
#   agent-client.pl --socket PATH [--start EPOCH] [--timeout S]
#       [--setup] [--hostname H] [--user NAME --uid N --gid N --group NAME
#       --home DIR] [--mount TAG:PATH]... [--served PORT:PATH]...
#       [--node-index N --net-addr CIDR --token HEX --peer NAME=ADDR...
#       --group-id GID...]
#       [--cwd DIR] [--env K=V]... [--out DIR] [--exec 'SHELL COMMAND']...
#       [--shutdown]
#
# Prints one line per event, times in seconds since --start (default: when
# it started):
#   hello 6.123 vmenv-agent 1.0 6.1.0-56-amd64
#   setup 6.201
#   exec 1 exit 0 0.412 python3 -c 'print(6*7)'
# With --out DIR, exec N's stdout and stderr go to DIR/N.out and DIR/N.err.
# Any of the multi-node options (protocol version 2) makes it speak version
# 2, whose SETUP carries them; otherwise it speaks version 1.
# Exits 0 when every step worked (a command's own exit status is reported,
# not judged), 1 otherwise.
use strict;
use warnings;
use Getopt::Long qw(GetOptions);
use IO::Select;
use IO::Socket::UNIX;
use Time::HiRes qw(time sleep);

my %T = (HELLO => 1, SETUP => 2, SETUP_OK => 3, SETUP_FAIL => 4, EXEC => 5,
	STARTED => 6, EXEC_FAIL => 7, STDIN => 8, STDOUT => 9, STDERR => 10,
	CREDIT => 11, SIGNAL => 12, EXIT => 13, SHUTDOWN => 14, ERROR => 15);
my %NAME = reverse %T;

my %o = (start => time(), timeout => 300, uid => 0, gid => 0, user => 'root',
	group => 'root', home => '/root', hostname => '', cwd => '/',
	mount => [], served => [], env => [], exec => [], peer => [], 'group-id' => [],
	'node-index' => 0, 'net-addr' => '', token => '');
GetOptions(\%o, 'socket=s', 'start=f', 'timeout=f', 'setup', 'hostname=s',
	'user=s', 'uid=i', 'gid=i', 'group=s', 'home=s', 'mount=s@', 'served=s@', 'cwd=s',
	'env=s@', 'out=s', 'exec=s@', 'shutdown', 'node-index=i', 'net-addr=s',
	'token=s', 'peer=s@', 'group-id=i@') or exit 2;
die "agent-client: --socket PATH is required\n" unless $o{socket};
$o{setup} = 1 if @{$o{exec}};
my $version = (@{$o{peer}} || $o{'net-addr'} ne '' || $o{token} ne '' ||
	@{$o{'group-id'}}) ? 2 : 1;
my $deadline = $o{start} + $o{timeout};

sub fail { print "error $_[0]\n"; exit 1; }
sub since { sprintf '%.3f', time() - $o{start} }

# --- frames ---------------------------------------------------------------

sub u32 { pack 'N', $_[0] }
sub str { pack('N', length $_[0]) . $_[0] }
sub strv { u32(scalar @_) . join '', map { str($_) } @_ }

my $sock;
until ($sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $o{socket})) {
	fail "no socket $o{socket}: $!" if time() > $deadline;
	sleep 0.01;
}
my $sel = IO::Select->new($sock);
my $inbuf = '';

sub send_frame {
	my ($type, $session, $payload) = @_;
	$payload //= '';
	my $f = pack('N C C n N', length $payload, $T{$type}, 0, 0, $session) . $payload;
	while (length $f) {
		my $n = $sock->syswrite($f);
		fail "write: $!" unless defined $n;
		substr($f, 0, $n, '');
	}
}

# Returns [type name, session, payload], or undef after wait seconds.
sub read_frame {
	my ($wait) = @_;
	my $until = time() + $wait;
	for (;;) {
		if (length $inbuf >= 12) {
			my ($len, $type, $flags, $res, $session) = unpack 'N C C n N', $inbuf;
			fail "frame of $len bytes" if $len > 64 * 1024;
			if (length $inbuf >= 12 + $len) {
				my $p = substr $inbuf, 12, $len;
				substr($inbuf, 0, 12 + $len, '');
				return [$NAME{$type} // "type$type", $session, $p];
			}
		}
		my $left = $until - time();
		return undef if $left <= 0;
		if ($sel->can_read($left)) {
			my $n = $sock->sysread(my $c, 65536);
			fail 'the guest closed the channel' unless $n;
			$inbuf .= $c;
		}
	}
}

sub get_str { my ($p) = @_; my $l = unpack 'N', $$p; my $s = substr $$p, 4, $l; substr($$p, 0, 4 + $l, ''); $s }

# --- steps ---------------------------------------------------------------

sub hello {
	for (;;) {
		fail 'no HELLO from the agent' if time() > $deadline;
		send_frame('HELLO', 0, u32($version));
		my $f = read_frame(1) or next;
		next unless $f->[0] eq 'HELLO';
		my $p = $f->[2];
		my ($ver, $flags) = unpack 'N N', $p;
		substr($p, 0, 8, '');
		print 'hello ', since(), " version $ver flags $flags ", get_str(\$p), "\n";
		fail "the agent speaks version $ver, not $version" if $ver != $version;
		return;
	}
}

sub setup {
	my @all = ((map { [$_, 0] } @{$o{mount}}), (map { [$_, 1] } @{$o{served}}));
	my @m = map { my ($t, $path) = split /:/, $_->[0], 2; str($t) . str($path) } @all;
	my $p = str($o{hostname}) . str($o{user}) . u32($o{uid}) . u32($o{gid}) .
		str($o{group}) . str($o{home}) . pack('q>', int(time())) .
		u32(scalar @m) . join('', @m);
	if ($version >= 2) {
		my @peers = map { my ($n, $a) = split /=/, $_, 2; str($n) . str($a) } @{$o{peer}};
		my @g = @{$o{'group-id'}};
		$p .= u32($o{'node-index'}) . str($o{'net-addr'}) . str($o{token}) .
			u32(scalar @g) . join('', map { u32($_) } @g) .
			u32(scalar @peers) . join('', @peers);
	}
	# Served mounts (AW_MOUNT_SERVED): one transport per mount, last.
	$p .= join('', map { u32($_->[1]) } @all) if @{$o{served}};
	send_frame('SETUP', 0, $p);
	for (;;) {
		fail 'no answer to SETUP' if time() > $deadline;
		my $f = read_frame(1) or next;
		next if $f->[0] eq 'HELLO';
		if ($f->[0] eq 'SETUP_FAIL') {
			my $q = $f->[2];
			my $err = unpack 'N', $q;
			substr($q, 0, 4, '');
			fail "SETUP_FAIL errno $err: " . get_str(\$q);
		}
		fail "unexpected $f->[0] after SETUP" unless $f->[0] eq 'SETUP_OK';
		print 'setup ', since(), "\n";
		return;
	}
}

sub out_file {
	my ($n, $ext) = @_;
	return undef unless $o{out};
	open my $fh, '>', "$o{out}/$n.$ext" or fail "open $o{out}/$n.$ext: $!";
	binmode $fh;
	return $fh;
}

sub run_exec {
	my ($n, $cmd) = @_;
	my @env = ('PATH=/usr/local/bin:/usr/bin:/bin', "HOME=$o{home}",
		"USER=$o{user}", 'LANG=C.UTF-8', @{$o{env}});
	my $p = u32($o{uid}) . u32($o{gid}) . u32(0) . u32(0) . str($o{cwd}) .
		strv('/bin/sh', '-c', $cmd) . strv(@env);
	my %fh = (STDOUT => out_file($n, 'out'), STDERR => out_file($n, 'err'));
	my $t0 = time();
	send_frame('EXEC', $n, $p);
	for (;;) {
		fail "exec $n: no answer" if time() > $deadline;
		my $f = read_frame(1) or next;
		my ($type, $session, $q) = @$f;
		next if $type eq 'HELLO';
		fail "agent error: " . get_str(\$q) if $type eq 'ERROR';
		fail "$type on session $session during exec $n" if $session != $n;
		if ($type eq 'STDOUT' || $type eq 'STDERR') {
			next unless length $q;
			print { $fh{$type} } $q if $fh{$type};
			send_frame('CREDIT', $n, u32(length $q));
		} elsif ($type eq 'EXEC_FAIL') {
			my $err = unpack 'N', $q;
			substr($q, 0, 4, '');
			fail "exec $n: EXEC_FAIL errno $err: " . get_str(\$q);
		} elsif ($type eq 'EXIT') {
			my ($kind, $code) = unpack 'N N', $q;
			printf "exec %d %s %d %.3f %s\n", $n, $kind ? 'signal' : 'exit',
				$code, time() - $t0, $cmd;
			return;
		} elsif ($type ne 'STARTED') {
			fail "unexpected $type during exec $n";
		}
	}
}

hello();
setup() if $o{setup};
my $i = 0;
run_exec(++$i, $_) for @{$o{exec}};
if ($o{shutdown}) {
	send_frame('SHUTDOWN', 0);
	print 'shutdown ', since(), "\n";
}
exit 0;
