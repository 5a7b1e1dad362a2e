Feature: Producer protocol
  A producer numbers its records from 0, keeps each until enough stores
  ACK it, answers FETCH from what it keeps, and sends HEAD once it has
  published.

  Background:
    Given a Dafka mesh on loopback

  Scenario: Offsets start at zero
    Given a producer of "hello"
    When the producer publishes 3 records
    Then the producer has assigned offsets 0 to 2

  Scenario: The producer answers FETCH from its unacknowledged records
    Given a producer of "hello"
    When the producer publishes 3 records
    And a scripted consumer connected to the producer
    And the scripted consumer fetches offsets 0 to 2
    Then the scripted consumer receives DIRECT-RECORDs 0 to 2

  Scenario: A FETCH for four billion records gets what the producer holds
    Given a producer of "hello"
    When the producer publishes 5 records
    And a scripted consumer connected to the producer
    And the scripted consumer fetches 4000000000 records from offset 0
    Then the scripted consumer receives DIRECT-RECORDs 0 to 4

  Scenario: HEAD repeats at an interval once the first record is out
    Given a producer of "hello"
    When the producer publishes 1 record
    And a scripted consumer connected to the producer
    Then the scripted consumer receives a HEAD for offset 0
    And the scripted consumer receives a HEAD for offset 0

  Scenario: No HEAD before the first record
    Given a producer of "hello"
    And a scripted store connected to the producer
    Then the scripted store receives no HEAD within 3 head intervals
    When the producer publishes 1 record
    Then the scripted store receives a HEAD for offset 0

  Scenario: An ACK releases records
    Given a producer of "hello"
    And a scripted store connected to the producer
    When the producer publishes 3 records
    And the scripted store ACKs offset 2 as store "s1"
    Then the producer has 0 unacknowledged records

  Scenario: Delivery reports follow the quorum
    Given a producer of "hello" with min_acks 2
    And a scripted store connected to the producer
    When the producer publishes 5 records
    And the scripted store ACKs offset 4 as store "s1"
    And the scripted store ACKs offset 1 as store "s2"
    Then the producer reports delivery of every offset below 2
    When the scripted store ACKs offset 4 as store "s2"
    Then the producer reports delivery of every offset below 5

  Scenario: With min_acks 2 one store is not enough, however often it ACKs
    Given a producer of "hello" with min_acks 2
    And a scripted store connected to the producer
    When the producer publishes 3 records
    And the scripted store ACKs offset 2 as store "s1"
    And the scripted store ACKs offset 2 as store "s1"
    Then the producer has 3 unacknowledged records
    When the scripted store ACKs offset 1 as store "s2"
    Then the producer has 1 unacknowledged record

  Scenario: An ACK past the producer's head is ignored
    Given a producer of "hello"
    And a scripted store connected to the producer
    When the producer publishes 3 records
    And the scripted store ACKs offset 18446744073709551615 as store "s1"
    And the scripted store ACKs offset 0 as store "s1"
    Then the producer has 2 unacknowledged records

  Scenario: Garbage on the producer's FETCH key is dropped and counted
    Given a producer of "hello"
    When the producer publishes 2 records
    And a scripted consumer connected to the producer
    And the scripted consumer sends garbage to the producer
    And the scripted consumer fetches offsets 0 to 1
    Then the scripted consumer receives DIRECT-RECORDs 0 to 1
    And the producer has counted 1 malformed message
