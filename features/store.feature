Feature: Store protocol
  A store keeps every partition in order, ACKs after the write, fetches
  its own gaps, and serves FETCH, GET-HEADS and CONSUMER-HELLO.

  Background:
    Given a Dafka mesh on loopback
    And a store

  Scenario: The store ACKs after the write
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 1
    Then the store ACKs offset 1

  Scenario: The store ignores a duplicate
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 0
    Then the store ACKs offset 0
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 1 to 1
    Then the store ACKs offset 1
    When a scripted consumer fetches offsets 0 to 1 from the store
    Then the scripted consumer receives DIRECT-RECORDs 0 to 1 with the first content

  Scenario: A record that differs from the stored one stops the partition's ACKs
    An ACK covers every offset below it, so once a second writer shows up
    (or a producer restarted below its head) the store must not ACK the
    partition again: the new writer would believe records stored that are not.
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 0
    Then the store ACKs offset 0
    When the scripted producer sends records 0 to 0 with content "another writer"
    And the scripted producer sends records 1 to 1
    And the scripted producer sends a HEAD for offset 1
    And the scripted producer sends records 0 to 0 of "other"
    Then the store ACKs offset 0 of "other"
    When the scripted producer sends records 1 to 1 of "other"
    Then the store ACKs offset 1 of "other"
    And the store has sent no ACK of "hello" past offset 0
    When a scripted consumer fetches offsets 0 to 0 from the store
    Then the scripted consumer receives DIRECT-RECORDs 0 to 0 with the first content

  Scenario: A producer taking over a partition learns its head from the store
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 4
    Then the store ACKs offset 4
    When the scripted producer asks the store for the head of its partition
    Then the scripted producer is told the store holds it up to offset 4
    When the scripted producer asks the store for the head of partition "never-written"
    Then the scripted producer is told the store holds none of it

  Scenario: A HEAD past what the store holds makes it fetch the gap
    Given a scripted producer connected to the store
    When the scripted producer sends a HEAD for offset 4
    Then the store sends a FETCH from offset 0 for 5 records
    When the scripted producer answers the FETCH
    Then the store ACKs offset 4

  Scenario: An offset jump makes the store fetch the gap and store in order
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 0
    And the scripted producer sends records 3 to 3
    Then the store sends a FETCH from offset 1 for 2 records
    When the scripted producer answers the FETCH
    Then the store ACKs offset 3

  Scenario: The store answers FETCH with the exact range
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 9
    Then the store ACKs offset 9
    When a scripted consumer fetches offsets 3 to 6 from the store
    Then the scripted consumer receives DIRECT-RECORDs 3 to 6
    When the scripted consumer fetches offsets 9 to 9 from the store
    Then the scripted consumer receives DIRECT-RECORDs 9 to 9

  Scenario: A run of records in one message is stored record by record
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 49 as one run
    Then the store ACKs offset 49
    When a scripted consumer fetches offsets 10 to 20 from the store
    Then the scripted consumer receives DIRECT-RECORDs 10 to 20

  Scenario: The store answers GET-HEADS with every partition of the topic
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 2
    And the scripted producer sends records 0 to 4 of partition "second"
    And the scripted producer sends records 0 to 0 of "other"
    Then the store ACKs offset 0 of "other"
    When a scripted consumer asks the store for the heads of "hello"
    Then the scripted consumer receives 2 DIRECT-HEADs for "hello" with offsets 2 and 4

  Scenario: The store describes every partition it holds to an admin tool
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 2
    And the scripted producer sends records 0 to 0 of "other"
    Then the store ACKs offset 0 of "other"
    When a scripted admin asks the store for every partition
    Then the scripted admin hears of partitions "hello" at head 2 and "other" at head 0
    When a scripted admin asks the store for the partitions of "nothing"
    Then the scripted admin hears of no partition

  Scenario: The store greets a consumer and answers its hello with heads
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 2
    Then the store ACKs offset 2
    When a scripted consumer of "hello" joins
    Then the store greets the scripted consumer
    When the scripted consumer answers the greeting
    Then the scripted consumer receives 1 DIRECT-HEADs for "hello" with offsets 2

  Scenario: A FETCH for four billion records from offset 2^64-1 is harmless
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 1
    Then the store ACKs offset 1
    When a scripted consumer fetches 4000000000 records from offset 18446744073709551615 of the store
    And the scripted consumer fetches offsets 0 to 1 from the store
    Then the scripted consumer receives DIRECT-RECORDs 0 to 1

  Scenario: A record at offset 2^64-1 does not stop the store
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 1
    And the scripted producer sends records 18446744073709551615 to 18446744073709551615
    And the scripted producer sends records 2 to 3
    Then the store ACKs offset 3

  Scenario: A restarted store serves what it stored
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 4
    Then the store ACKs offset 4
    When the store restarts on the same directory
    And a scripted consumer fetches offsets 0 to 4 from the store
    Then the scripted consumer receives DIRECT-RECORDs 0 to 4

  Scenario: A store keeps the highest position committed under a name and tells it back
    When the scripted consumer commits "app" at offset 5 of partition "p1"
    Then the store acknowledges the commit
    When the scripted consumer commits "app" at offset 2 of partition "p1"
    Then the store acknowledges the commit
    When the scripted consumer asks the store for the positions of "app" in "hello"
    Then the scripted consumer is told "app" is at offset 5 of partition "p1"
    When the scripted consumer asks the store for the positions of "other" in "hello"
    Then the scripted consumer is told "other" has no position in "hello"

  Scenario: Positions survive a store restart
    When the scripted consumer commits "app" at offset 7 of partition "p1"
    Then the store acknowledges the commit
    When the store restarts on the same directory
    And the scripted consumer asks the store for the positions of "app" in "hello"
    Then the scripted consumer is told "app" is at offset 7 of partition "p1"

  Scenario: A store tells where a time falls in a partition, from its time index
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 9 stamped 1000 ms apart from 1000000
    Then the store ACKs offset 9
    When the scripted consumer asks the store where time 1004500 falls in "hello"
    Then the scripted consumer is told time 1004500 is at offset 5
    When the scripted consumer asks the store where time 2000000 falls in "hello"
    Then the scripted consumer is told time 2000000 is at offset 10
    When the store restarts on the same directory
    And the scripted consumer asks the store where time 1 falls in "hello"
    Then the scripted consumer is told time 1 is at offset 0

  Scenario: Retention deletes whole runs from the start and a FETCH below the log start is told so
    Given a scripted producer connected to the store
    When the scripted producer sends records 0 to 3 as one run
    Then the store ACKs offset 3
    When the scripted producer sends records 4 to 6 as one run
    Then the store ACKs offset 6
    When the scripted producer sends records 7 to 9 as one run
    Then the store ACKs offset 9
    When the store restarts keeping 1 byte per partition
    Then the store's log start becomes 7
    When a scripted consumer fetches offsets 2 to 9 from the store
    Then the scripted consumer is told the log start is 7
    And the scripted consumer receives DIRECT-RECORDs 7 to 9

  Scenario Outline: A malformed message is dropped and counted, and the store keeps storing
    Given a scripted producer connected to the store
    When the scripted producer sends a RECORD with <fault>
    And the scripted producer sends records 0 to 0
    Then the store ACKs offset 0
    And the store has counted 1 malformed message

    Examples:
      | fault                 |
      | a bad signature       |
      | an unknown version    |
      | a key that does not match its body |
      | a truncated body      |
      | an extra frame        |
      | random bytes          |
      | a 100 MB topic name   |
      | a run longer than its content |
